"""Scoring the attacks at the partner: which encoded value stands for which clear value.

Only the partner can do this (it holds the key, the config and the raw extract). The partner's encoder is
run again over the raw extract in memory, and each encoded value of an audited column is mapped to the
clear value it encodes (core name, Metaphone code, initial). The attacks never see these maps; they are
used only to count how many of the attacker's guesses were right. Nothing here is written to disk.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jellyfish
import pandas as pd
import pyarrow as pa

from linkage.audit.frequency import Reference
from linkage.audit.nickname_edges import NICKNAME_EDGE_COLUMNS
from linkage.audit.typo_graph import TYPO_GRAPH_COLUMNS, compact_one, list_key
from linkage.config import load_partner_config
from linkage.encode.identifiers import IdentifierEncoder, full_name_label
from linkage.encode.reader import iter_chunks

Oracle = dict[str, dict[object, str]]  # column -> encoded value (token str or filter bytes) -> clear value

_CLEAN_COLUMN = {"given_name": "given", "surname": "surname"}


def _core(value: str, field: str) -> str:
    return value.split(" ")[0] if field == "given_name" else value.replace(" ", "")


def _clear_of(field: str, encoding: str, core: str) -> str:
    if encoding in ("phonetic", "phonetic_pc"):
        return jellyfish.metaphone(core)
    if encoding == "initial":
        return core[0]
    return core


def build_oracle(config_path: str | Path, key: bytes, input_path: str | Path, columns: list[str]) -> Oracle:
    """Map each encoded value of the given name columns to its clear value, from the raw extract."""
    return scan_clear_extract(config_path, key, input_path, columns, population=False).oracle


@dataclass
class ClearScan:
    """What one pass over the raw extract gives the audit (held in memory only, never written)."""

    oracle: Oracle
    population: pd.DataFrame  # one row per local id: core names, year, sex, district (linkage.audit.population)
    reference: Reference      # worst case: the extract's own name frequencies, one count per local id
    rows: int


def scan_clear_extract(config_path: str | Path, key: bytes, input_path: str | Path, columns: list[str], *,
                       population: bool = True, progress: Callable[[str], None] | None = None) -> ClearScan:
    """Oracle, worst-case population and name reference of an extract in one read (cleaned and encoded once).

    The release gate used to read the clear extract three times (oracle, name reference, population);
    on a 200,000-person police extract each read cleans every row, and the oracle's also encodes it.
    """
    from linkage.audit.frequency import reference_from_clear
    from linkage.audit.population import finish_population, population_rows

    cfg = load_partner_config(config_path)
    encoder = IdentifierEncoder(cfg, key)
    needed = list(dict.fromkeys([cfg.local_id] + [c for cols in cfg.identifiers.columns().values() for c in cols]))
    names = {f: getattr(cfg.identifiers, f).column for f in ("given_name", "surname")
             if getattr(cfg.identifiers, f) is not None}
    oracle: Oracle = {c: {} for c in columns}
    plan = _oracle_plan(columns)
    people, raw_names, rows = [], [], 0
    for chunk in iter_chunks(input_path, cfg.input, needed, cfg.chunk_rows):
        clean, _ = encoder.clean(chunk)
        if plan:
            _add_to_oracle(oracle, plan, clean, encoder.encode(clean))
        local_ids = chunk.column(cfg.local_id).to_pylist()
        if population:
            people.append(population_rows(local_ids, clean, chunk.num_rows))
            raw_names.append(pd.DataFrame({"_id": local_ids, **{c: chunk.column(c).to_pylist()
                                                                for c in dict.fromkeys(names.values())}}))
        rows += chunk.num_rows
        if progress is not None:
            progress(f"read {rows:,} rows of the clear extract")
    frame = pd.concat(raw_names).drop_duplicates("_id") if raw_names else pd.DataFrame(columns=list(names.values()))
    return ClearScan(oracle, finish_population(people), reference_from_clear(frame, names), rows)


def _oracle_plan(columns: list[str]) -> list[tuple[str, str, str]]:
    plan = []
    for col in columns:
        field, _, encoding = col.partition("__")
        if field == "name" and encoding in ("given_shared", "surname_shared"):
            field, encoding = ("given_name" if encoding == "given_shared" else "surname"), "exact"
        if field in _CLEAN_COLUMN or col == "name__full" or field == "full_name":
            plan.append((col, field, encoding.split("+")[0]))
    return plan


def _add_to_oracle(oracle: Oracle, plan: list[tuple[str, str, str]], clean: dict[str, pa.Array],
                   encoded: dict[str, pa.Array]) -> None:
    for col, field, encoding in plan:
        if col in TYPO_GRAPH_COLUMNS and col in encoded and "given" in clean and "surname" in clean:
            # a deletion list is scored by the key of the whole list (its first token may be a neighbour's too)
            for g, s, value in zip(clean["given"].to_pylist(), clean["surname"].to_pylist(),
                                   encoded[col].to_pylist(), strict=True):
                if g and s and value:
                    oracle[col].setdefault(str(list_key(compact_one(value))),
                                           full_name_label(_core(g, "given_name"), _core(s, "surname")))
            continue
        if (col == "name__full" or field == "full_name") and col in encoded and "given" in clean and "surname" in clean:
            # full_name__near_dob lists are scored by their first token, like the per-name lists below
            for g, s, value in zip(clean["given"].to_pylist(), clean["surname"].to_pylist(),
                                   encoded[col].to_pylist(), strict=True):
                if isinstance(value, list):
                    value = value[0] if value else None
                if g and s and value is not None:
                    oracle[col].setdefault(value, full_name_label(_core(g, "given_name"), _core(s, "surname")))
            continue
        if col not in encoded or field not in _CLEAN_COLUMN or _CLEAN_COLUMN[field] not in clean:
            continue
        names = clean[_CLEAN_COLUMN[field]].to_pylist()
        values = encoded[col].to_pylist() if isinstance(encoded[col], pa.Array) else list(encoded[col])
        target = oracle[col]
        for name, value in zip(names, values, strict=True):
            if not name or value is None:
                continue
            # A token list (composite tokens, aliases) is scored by its first token, which stands for the row's
            # name; its other tokens are not kept (at 200,000 people they were most of the audit's memory).
            one = (value[0] if value else None) if isinstance(value, list) else value
            if one is not None and one not in target:
                target[one] = sys.intern(_clear_of(field, encoding, _core(name, field)))
            if col in NICKNAME_EDGE_COLUMNS and value:
                # Also by the key of the whole list: a nickname's first token may be its formal name's too (both lists
                # hold it at one date or address), which the attacks on these columns are scored without.
                target.setdefault(str(list_key(compact_one(value))), sys.intern(_core(name, field)))


def reference_from_input(config_path: str | Path, input_path: str | Path) -> dict[str, dict[str, float]]:
    """Worst-case reference: the name frequencies of the extract itself, one count per local id.

    Stands for an attacker whose public figures match this population exactly; the attack still sees
    only frequencies, never which record holds which name.
    """
    import pandas as pd

    from linkage.audit.frequency import reference_from_clear

    cfg = load_partner_config(config_path)
    names = {f: getattr(cfg.identifiers, f).column for f in ("given_name", "surname")
             if getattr(cfg.identifiers, f) is not None}
    frames = [chunk.to_pandas() for chunk in iter_chunks(input_path, cfg.input, [cfg.local_id, *names.values()],
                                                          cfg.chunk_rows)]
    frame = pd.concat(frames).drop_duplicates(cfg.local_id) if frames else pd.DataFrame(columns=list(names.values()))
    return reference_from_clear(frame, names)
