"""Encoder-side hardening that is not a property of one column: row order and weak-profile warnings.

* :func:`keyed_shuffle` rewrites ``tokens.parquet`` sorted by identity id. Identity ids start with the
  record id, a keyed hash of the local id, so the order is pseudo-random to anyone without the key, the
  same on every rerun (outputs stay byte-identical), and carries nothing of the raw extract's order (an
  extract sorted by surname would otherwise give surnames away by position).
* :func:`weak_encoding_reasons` names the settings of a partner config that the audit's attacks are known
  to beat, so ``linkage hash`` can warn before anything is released (docs/threat-model.md §3).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from linkage.config import PartnerConfig
from linkage.errors import LinkageInputError


def keyed_shuffle(tokens_path: Path, parquet_options: dict, *, batch_rows: int = 65_536) -> None:
    """Rewrite a tokens.parquet in identity-id order (a keyed pseudo-random permutation of its rows).

    Sorting the whole table in memory held every token of the extract at once (6.4 GB resident for a
    2.2M-row police extract), so rows are first spilled into one Arrow file per leading character of the
    identity id, and the buckets are sorted and written one at a time, in character order. Buckets are
    contiguous ranges of the sort order, so the result is the same file as a full sort, in ~1/16 of the
    memory (record ids are hex). The spill holds tokens only, never a clear value.
    """
    source = pq.ParquetFile(tokens_path)
    schema = source.schema_arrow
    spill = tokens_path.parent / ".shuffle"
    spill.mkdir()
    try:
        writers: dict[str, pa.ipc.RecordBatchFileWriter] = {}
        sinks: list[pa.OSFile] = []
        try:
            for batch in source.iter_batches(batch_size=batch_rows):
                if batch.column("identity_id").null_count:  # a row without an id would be lost by the split
                    raise LinkageInputError("identity_id is missing on some rows", file=str(tokens_path),
                                            field="identity_id")
                lead = pc.utf8_slice_codeunits(batch.column("identity_id"), 0, 1)
                for value in pc.unique(lead).to_pylist():
                    if value not in writers:
                        sink = pa.OSFile(str(spill / f"{ord(value or chr(0)):06x}.arrow"), "wb")
                        sinks.append(sink)
                        writers[value] = pa.ipc.new_file(sink, schema)
                    writers[value].write_batch(batch.filter(pc.equal(lead, value)))
        finally:
            for writer in writers.values():
                writer.close()
            for sink in sinks:
                sink.close()
        source.close()
        shuffled = tokens_path.with_name(tokens_path.name + ".shuffled")
        with pq.ParquetWriter(shuffled, schema, **parquet_options) as out:
            for value in sorted(writers):
                with pa.memory_map(str(spill / f"{ord(value or chr(0)):06x}.arrow")) as mapped:
                    bucket = pa.ipc.open_file(mapped).read_all()
                out.write_table(bucket.sort_by([("identity_id", "ascending")]))
        os.replace(shuffled, tokens_path)
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def weak_encoding_reasons(cfg: PartnerConfig) -> list[str]:
    """Why this config's encodings are weaker than the shipped profile (empty list: none found)."""
    enc = cfg.encodings
    reasons = []
    names = cfg.identifiers.given_name is not None or cfg.identifiers.surname is not None
    if names and enc.name_token_salt != "dob":
        reasons.append("name tokens are not composite with the date of birth: their frequencies show "
                       "(frequency alignment)")
    if names and {"phonetic", "initial"} & set(enc.name_variants):
        reasons.append("phonetic/initial name tokens have few values and are recovered almost completely")
    if enc.bloom is not None and names and enc.bloom.salt != "dob":
        reasons.append("Bloom filters are not salted with the date of birth: filters of one name cluster "
                       "(similarity-graph attack, pattern mining)")
    if enc.bloom is not None and names and not enc.bloom.balanced:
        reasons.append("Bloom filters are not balanced: the bit count gives the name's length")
    if "del1" in enc.name_variants and not enc.pad_token_lists:
        reasons.append("name deletion-neighbourhood lists are not padded: their size gives the name's length")
    # full_name_tokens is not named: the shipped profile carries it (the suite aligns it within year of birth and
    # sex: 4.5% worst at 200,000 people, docs/benchmarks.md 'The unsalted full name, priced from the data').
    if not enc.shuffle_rows:
        reasons.append("rows are written in input order: an extract sorted by name gives names by position")
    return reasons
