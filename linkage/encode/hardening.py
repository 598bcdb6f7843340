"""Encoder-side hardening that is not a property of one column: row order and weak-profile warnings.

* :func:`keyed_shuffle` rewrites ``tokens.parquet`` sorted by identity id. Identity ids start with the
  record id, a keyed hash of the local id, so the order is pseudo-random to anyone without the key, the
  same on every rerun (outputs stay byte-identical), and carries nothing of the raw extract's order (an
  extract sorted by surname would otherwise give surnames away by position).
* :func:`weak_encoding_reasons` names the settings of a partner config that the audit's attacks are known
  to beat, so ``linkage hash`` can warn before anything is released (docs/threat-model.md §3).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from linkage.config import PartnerConfig


def keyed_shuffle(tokens_path: Path, parquet_options: dict) -> None:
    """Rewrite a tokens.parquet in identity-id order (a keyed pseudo-random permutation of its rows)."""
    table = pq.read_table(tokens_path)
    table = table.sort_by([("identity_id", "ascending")])
    pq.write_table(table, tokens_path, **parquet_options)


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
    if names and enc.full_name_tokens:
        reasons.append("full-name tokens are not composite with the date of birth: common full names repeat, "
                       "more so in a larger population (frequency alignment)")
    if not enc.shuffle_rows:
        reasons.append("rows are written in input order: an extract sorted by name gives names by position")
    return reasons
