"""``encode_extract``: a raw partner extract in, an encoded extract folder out.

Streams the input in chunks (bounded memory), rejects unusable rows with a reason (never the value),
keeps every accepted row's payload, and writes one token row per distinct identifier set of each local
record. Token rows go to temporary part files first; DuckDB then merges and de-duplicates them with
bounded memory, and the result is written in a fixed order so reruns are byte-identical.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import time
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from linkage import __version__
from linkage.config import PartnerConfig, load_partner_config
from linkage.encode.identifiers import IdentifierEncoder
from linkage.encode.manifest import ENCODED_FILES, EncodedManifest
from linkage.encode.payload import parse_payload, payload_schema
from linkage.encode.reader import iter_chunks
from linkage.errors import LinkageInputError
from linkage.io import atomic_output_dir, progress, sha256_file, write_json
from linkage.keys import key_check_value, record_id

PARQUET_OPTIONS = {"compression": "zstd", "write_statistics": False}


def _record_ids(local_ids: pd.Series, key: bytes, project_id: str, source: str, cache: dict) -> np.ndarray:
    codes, uniques = pd.factorize(local_ids, sort=False)
    ids = np.empty(len(uniques), dtype=object)
    for i, value in enumerate(uniques):
        rid = cache.get(value)
        if rid is None:
            rid = record_id(key, project_id, source, value)
            if len(cache) < 2_000_000:
                cache[value] = rid
        ids[i] = rid
    return ids[codes]


def encode_extract(config: PartnerConfig | str | Path, key: bytes, input_path: str | Path,
                   out_dir: str | Path, *, source: str | None = None, quiet: bool = False,
                   today: dt.date | None = None) -> dict:
    """Encode one partner extract. Returns the manifest as a dict.

    ``source`` overrides the config's source name (two extracts of one layout, e.g. FEBRL 4a and 4b).
    """
    cfg = config if isinstance(config, PartnerConfig) else load_partner_config(config)
    if source is not None:
        cfg = cfg.model_copy(update={"source": source})
    started = time.perf_counter()
    input_path = Path(input_path)
    encoder = IdentifierEncoder(cfg, key, today=today)
    id_columns = cfg.identifiers.columns()
    needed = list(dict.fromkeys([cfg.local_id] + [c for cols in id_columns.values() for c in cols]
                                + [p.column for p in cfg.payload]))

    with atomic_output_dir(out_dir) as tmp:
        parts = tmp / ".parts"
        parts.mkdir()
        token_schema = encoder.arrow_schema()
        pay_schema = payload_schema(cfg.payload)
        payload_writer = pq.ParquetWriter(tmp / "payload.parquet", pay_schema, **PARQUET_OPTIONS)
        rejected_file = open(tmp / "rejected.csv", "w", newline="", encoding="utf-8")
        rejected_csv = csv.writer(rejected_file)
        rejected_csv.writerow(["row_number", "field", "reason", "action"])
        rows_read = rows_accepted = 0
        reasons: Counter[str] = Counter()
        blanked: Counter[str] = Counter()
        rid_cache: dict[str, str] = {}
        seen_ids: set[str] = set()
        bar = progress(desc=f"hash {cfg.source}", quiet=quiet)
        try:
            for n_part, chunk in enumerate(iter_chunks(input_path, cfg.input, needed, cfg.chunk_rows)):
                n = len(chunk)
                row_numbers = np.arange(rows_read + 1, rows_read + n + 1, dtype=np.int64)
                rows_read += n
                problems: list[tuple[np.ndarray, str, str, str]] = []
                local = chunk[cfg.local_id].astype(str).str.strip()
                problems.append(((local == "").to_numpy(), cfg.local_id, "missing local id", "reject"))
                if cfg.unique_local_id:
                    dup_in_chunk = local.duplicated().to_numpy()
                    dup_before = local.isin(seen_ids).to_numpy()
                    problems.append((dup_in_chunk | dup_before, cfg.local_id,
                                     "duplicate local id (config declares one row per id)", "reject"))
                    seen_ids.update(local[~(dup_in_chunk | dup_before)])
                clean, id_problems = encoder.clean(chunk)
                arrays, pay_problems = parse_payload(chunk, cfg.payload)
                problems += id_problems + [(m, c, r, "reject") for m, c, r in pay_problems]

                # First problem in column order decides the row's reported reason.
                order = {c: i for i, c in enumerate(needed)}
                problems.sort(key=lambda p: order.get(p[1], len(order)))
                reject_field = np.full(n, None, dtype=object)
                reject_reason = np.full(n, None, dtype=object)
                for mask, field, reason, action in problems:
                    if action == "reject":
                        take = mask & (reject_field == None)  # noqa: E711 (elementwise)
                        reject_field[take] = field
                        reject_reason[take] = reason
                rejected = reject_field != None  # noqa: E711
                for i in np.flatnonzero(rejected):
                    rejected_csv.writerow([int(row_numbers[i]), reject_field[i], reject_reason[i], "rejected"])
                    reasons[f"{reject_field[i]}: {reject_reason[i]}"] += 1
                accepted = ~rejected
                for mask, field, reason, action in problems:
                    if action == "blank":
                        for i in np.flatnonzero(mask & accepted):
                            rejected_csv.writerow([int(row_numbers[i]), field, reason, "blanked"])
                        blanked[f"{field}: {reason}"] += int((mask & accepted).sum())
                rows_accepted += int(accepted.sum())
                encoder.count_placeholders(accepted)
                if accepted.any():
                    rids = _record_ids(local[accepted], key, cfg.project_id, cfg.source, rid_cache)
                    pay = {"record_id": pa.array(rids, type=pa.string()),
                           "row_number": pa.array(row_numbers[accepted])}
                    pay.update({k: v.filter(pa.array(accepted)) for k, v in arrays.items()})
                    payload_writer.write_table(pa.table(pay, schema=pay_schema))

                    ident = clean[accepted].copy()
                    ident.insert(0, "record_id", rids)
                    ident["_first_row"] = row_numbers[accepted]
                    ident = ident.drop_duplicates(subset=[c for c in ident.columns if c != "_first_row"])
                    encoded = encoder.encode(ident)
                    table = {"record_id": pa.array(ident["record_id"].to_numpy(), type=pa.string()),
                             "_first_row": pa.array(ident["_first_row"].to_numpy(), type=pa.int64())}
                    for name, field in zip(token_schema.names[2:], token_schema.types[2:], strict=True):
                        table[name] = pa.array(encoded[name], type=field)
                    pq.write_table(pa.table(table, schema=token_schema), parts / f"{n_part:06d}.parquet")
                bar.update(n)
        finally:
            bar.close()
            payload_writer.close()
            rejected_file.close()
        if rows_read == 0:
            raise LinkageInputError("file has a header but no data rows", file=str(input_path), row=1)

        n_records, n_identities = _merge_token_parts(parts, tmp / "tokens.parquet", token_schema)
        shutil.rmtree(parts)
        manifest = EncodedManifest(
            tool_version=__version__, source=cfg.source, project_id=cfg.project_id, kcv=key_check_value(key),
            one_person_per_id=cfg.one_person_per_id,
            payload_columns={p.column: p.type for p in cfg.payload},
            encodings={"columns": encoder.columns,
                       "bloom": cfg.encodings.bloom.model_dump() if cfg.encodings.bloom else None},
            counts={"rows_read": rows_read, "rows_accepted": rows_accepted,
                    "rows_rejected": rows_read - rows_accepted, "records": n_records,
                    "identities": n_identities, "placeholder_dobs": encoder.placeholder_dobs,
                    "rejected_by_reason": dict(sorted(reasons.items())),
                    "blanked_by_reason": dict(sorted(blanked.items()))},
            files={name: sha256_file(tmp / name) for name in ENCODED_FILES},
            created_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            elapsed_seconds=round(time.perf_counter() - started, 3),
        ).model_dump(mode="json")
        write_json(tmp / "manifest.json", manifest)
    return manifest


def _merge_token_parts(parts: Path, out: Path, schema: pa.Schema) -> tuple[int, int]:
    """De-duplicate identity rows across chunks and number them per record, in a fixed order."""
    token_cols = [n for n in schema.names if n not in ("record_id", "_first_row")]
    final_schema = pa.schema([pa.field("record_id", pa.string()), pa.field("identity_id", pa.string())]
                             + [schema.field(n) for n in token_cols])
    files = sorted(parts.glob("*.parquet"))
    if not files:
        pq.write_table(final_schema.empty_table(), out, **PARQUET_OPTIONS)
        return 0, 0
    con = duckdb.connect()
    con.execute("SET memory_limit = '2GB'; SET preserve_insertion_order = true")
    con.execute(f"SET temp_directory = '{parts / 'spill'}'")
    cols = ", ".join(f'"{c}"' for c in token_cols)
    file_list = ", ".join(f"'{f}'" for f in files)
    query = f"""
        WITH distinct_ids AS (
            SELECT record_id, {cols}, min(_first_row) AS first_row
            FROM read_parquet([{file_list}]) GROUP BY ALL
        )
        SELECT record_id,
               record_id || '-' || CAST(row_number() OVER (PARTITION BY record_id ORDER BY first_row) - 1
                                        AS VARCHAR) AS identity_id,
               {cols}
        FROM distinct_ids ORDER BY record_id, first_row
    """
    reader = con.sql(query).to_arrow_reader(batch_size=100_000)
    n_identities = 0
    with pq.ParquetWriter(out, final_schema, **PARQUET_OPTIONS) as writer:
        for batch in reader:
            n_identities += batch.num_rows
            columns = [batch.column(i).cast(final_schema.field(i).type) for i in range(batch.num_columns)]
            table = pa.Table.from_arrays(columns, schema=final_schema)
            writer.write_table(table)
    (n_records,) = con.execute(f"SELECT count(DISTINCT record_id) FROM read_parquet([{file_list}])").fetchone()
    con.close()
    return int(n_records), n_identities
