"""The attack suite over one or several encoded extracts, scored per field and per partner.

Runs :mod:`linkage.audit.attacks` on every name column an extract holds (token columns: frequency
alignment unconditioned and conditioned on year of birth, sex, district and list size; Bloom columns:
similarity clustering plus pattern mining, unconditioned and within year-of-birth groups, and postcode-
salted filters also within the district, sector and full-postcode groups their co-released postcode
tokens form), salted nickname lists also by the forms different names share at one date or address
(:mod:`linkage.audit.nickname_edges`), and the row-order attack. With several extracts the attacker pools them
(cross-partner aggregation: one key, so one name gives the same token everywhere) and each partner's records
are scored, as well as all partners together. Scores use the partner's key-holding oracle
(:mod:`linkage.audit.verify`); only rates come out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from linkage.audit.attacks import (
    CONDITION_SETS,
    MIN_GROUP,
    bloom_cluster_attack,
    conditioned_frequency_attack,
    deletion_list_size,
    group_baseline_guesses,
    list_frequency_attack,
    row_order_attack,
    token_graph_attack,
)
from linkage.audit.frequency import ENCODING_TRANSFORMS, column_field
from linkage.audit.nickname_edges import NICKNAME_EDGE_COLUMNS, nickname_edge_attack
from linkage.audit.typo_graph import (
    GRAPH_CONDITION_SETS,
    TYPO_GRAPH_COLUMNS,
    WL_ROUNDS,
    compact_lists,
    compact_one,
    deletion_graph_attacks,
    list_key,
)
from linkage.audit.verify import Oracle, build_oracle

ALL_PARTNERS = "all partners"


@dataclass
class Part:
    """One encoded extract as the attacker holds it, plus the partner's oracle for scoring."""

    source: str
    records: pd.DataFrame  # one row per record (its first identifier set), in file order
    columns: dict[str, dict[str, Any]]
    bloom: dict[str, Any]
    oracle: Oracle


def first_identities(tokens_path: Path, columns: dict[str, dict[str, Any]] | None = None,
                     reset_index: bool = True) -> pd.DataFrame:
    """One identifier set per record (its first in the file), so a record with aliases counts once.

    With the manifest's ``columns``, only what an attack reads is loaded (:func:`attacked_columns`): the
    date-of-birth and postcode deletion lists were most of the memory of a 200,000-person extract.
    """
    table = pq.read_table(tokens_path, columns=None if columns is None else attacked_columns(columns))
    first = ~pd.Series(table.column("record_id").to_numpy(zero_copy_only=False)).duplicated().to_numpy()
    table = table.filter(pa.array(first))  # duplicates dropped before the lists become Python
    compact = {c: compact_lists(table.column(c)) for c in TYPO_GRAPH_COLUMNS if c in table.column_names}
    frame = table.drop_columns(list(compact)).to_pandas()
    for c, lists in compact.items():  # 64-bit integers, not 32-character strings (see linkage.audit.typo_graph)
        frame[c] = pd.Series(lists, index=frame.index, dtype=object)
    if not reset_index:
        frame.index = np.flatnonzero(first)
    return frame


def attacked_columns(columns: dict[str, dict[str, Any]]) -> list[str]:
    """record_id and every column an attack or the uniqueness table reads: name fields, plain tokens."""
    names = ("given_name", "surname", "name", "full_name")
    return ["record_id"] + [c for c, spec in columns.items() if spec["type"] != "token_list"
                            or c.partition("__")[0] in names]


def load_part(encoded_dir: str | Path, config: str | Path, key: bytes, clear_input: str | Path) -> Part:
    from linkage.encode.manifest import read_manifest

    folder = Path(encoded_dir)
    manifest = read_manifest(folder).model_dump()
    columns = manifest["encodings"]["columns"]
    records = first_identities(folder / "tokens.parquet", columns)
    oracle = build_oracle(config, key, clear_input, name_columns(columns))
    return Part(manifest["source"], records, columns, manifest["encodings"].get("bloom") or {}, oracle)


def name_columns(columns: dict[str, dict[str, Any]]) -> list[str]:
    """Name columns the suite attacks: single tokens with a known transform, and Bloom filters."""
    out = []
    for col, spec in columns.items():
        field, encoding = column_field(col)
        if field not in ("given_name", "surname", "full_name"):
            continue
        if (spec["type"] == "token" and encoding in ENCODING_TRANSFORMS) or spec["type"] in ("bloom", "token_list"):
            out.append(col)
    return out


def _hits(values: pd.Series, guesses: dict, truth: dict) -> pd.Series:
    """Per value: the attacker's guess for it is its clear value (False where there is no guess or value)."""
    # dict.get in a comprehension: Series.map(dict) first copies the whole dict into a Series per call.
    hit = [(g := guesses.get(v)) is not None and g == truth.get(v) for v in values.tolist()]
    return pd.Series(hit, index=values.index, dtype=bool)


def _share(values: pd.Series, guesses: dict, truth: dict) -> tuple[int, float]:
    present = values.dropna()
    if present.empty:
        return 0, 0.0
    return int(len(present)), round(float(_hits(present, guesses, truth).mean()), 4)


def run_suite(parts: list[Part], population: pd.DataFrame,
              progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Every attack on every name column; one row per (partner or all partners, column, attack).

    ``progress`` receives one line per column attacked (the suite takes minutes at 200,000 people)."""
    pooled = pd.concat([p.records.assign(_part=i) for i, p in enumerate(parts)], ignore_index=True)
    truth: dict = {}
    for p in parts:
        for col_map in p.oracle.values():
            truth.update(col_map)
    columns: dict[str, dict[str, Any]] = {}
    for p in parts:
        columns.update({c: s for c, s in p.columns.items() if c in pooled.columns})
    bloom = next((p.bloom for p in parts if p.bloom), {})
    rows: list[dict[str, Any]] = []
    present_conditions = [c for c in CONDITION_SETS if all(x in pooled.columns for x in c)]

    def score(col: str, attack: str, guesses: dict, baseline: dict | None = None) -> None:
        present = pooled[col].notna()
        hits = _hits(pooled[col], guesses, truth)
        free = _hits(pooled[col], baseline, truth) if baseline is not None else None
        scopes = [(p.source, pooled["_part"] == i) for i, p in enumerate(parts)]
        if len(parts) > 1:
            scopes.append((ALL_PARTNERS, pd.Series(True, index=pooled.index)))
        for scope, mask in scopes:
            n = int((mask & present).sum())
            share = round(float(hits[mask & present].mean()), 4) if n else 0.0
            row = {"partner": scope, "column": col, "encoding": columns[col]["encoding"], "attack": attack,
                   "records_with_value": n, "records_reidentified_share": share}
            if free is not None:
                # Counted record by record: what the attack names that the grouping alone does not. (Subtracting
                # the two shares would let records the baseline names and the attack misses cancel real hits.)
                row["baseline_share"] = round(float(free[mask & present].mean()), 4) if n else 0.0
                row["excess_share"] = round(float((hits & ~free)[mask & present].mean()), 4) if n else 0.0
            rows.append(row)

    def score_rows(col: str, attack: str, guesses: pd.Series, values: pd.Series | None = None,
                   encoding: str | None = None, grouping: pd.Series | None = None) -> None:
        # Token lists: a record is re-identified when its guess is its name (any token of its list says which).
        first = (pooled[col] if values is None else values).map(
            lambda v: (v[0] if len(v) else None) if isinstance(v, (list, np.ndarray))
            else v if isinstance(v, (str, bytes)) else None)
        right = first.map(lambda t: truth.get(t) if t is not None else None)
        scopes = [(p.source, pooled["_part"] == i) for i, p in enumerate(parts)]
        if len(parts) > 1:
            scopes.append((ALL_PARTNERS, pd.Series(True, index=pooled.index)))
        for scope, mask in scopes:
            present = mask & first.notna()
            n = int(present.sum())
            share = round(float((guesses[present] == right[present]).mean()), 4) if n else 0.0
            row = {"partner": scope, "column": col, "attack": attack,
                   "encoding": columns[col]["encoding"] if encoding is None else encoding,
                   "records_with_value": n, "records_reidentified_share": share}
            if grouping is not None:
                # What the grouping alone names (each group's commonest reference name), for the reader: unlike a
                # Bloom group attack's baseline the gate does not subtract it (it counts the whole share).
                row["grouping_baseline_share"] = (round(float((grouping[present] == right[present]).mean()), 4)
                                                  if n else 0.0)
            rows.append(row)

    def typo_graph_rows(col: str, field: str) -> None:
        # Records of one name hold one list, so a list's key stands for the name: frequency alignment of the keys
        # within the co-released groups (and within the list's size when lists are not padded) is the strongest
        # frequency attack on it; deletion-graph matching reads which names are one edit apart.
        keys = pooled[col].map(lambda v: None if (k := list_key(v)) is None else str(k))
        sizes = pooled[col].map(lambda v: len(v) if isinstance(v, np.ndarray) else None).dropna()
        unpadded = sizes.nunique() > 1
        keyed = pooled.assign(_list_key=keys)
        size_label: tuple[str, ...] = ("list size",) if unpadded else ()
        for cond in present_conditions:
            guessed = conditioned_frequency_attack(keyed, "_list_key", population, field, ENCODING_TRANSFORMS["full"],
                                                   cond, size_column=col if unpadded else None)
            score_rows(col, "frequency alignment of the whole list" + _cond_label(cond + size_label),
                       keys.map(guessed), keys)
        # Also within the co-released groups: colours of the whole graph, aligned within (colour, year/sex/...).
        graph_conditions = ((),) + tuple(c for c in GRAPH_CONDITION_SETS if all(x in pooled.columns for x in c))
        by_depth = deletion_graph_attacks(pooled, col, population, field, WL_ROUNDS, list_size=unpadded,
                                          condition_sets=graph_conditions)
        grouping_guesses = {cond: keys.map(group_baseline_guesses(keyed, "_list_key", population, field, cond, 1))
                            for cond in graph_conditions if cond}
        for (rounds, cond, voted), guesses in by_depth.items():
            score_rows(col, f"deletion-graph matching ({rounds} refinement rounds{', list size' if unpadded else ''})"
                       + _cond_label(cond) + (", one guess per list" if voted else ""), guesses, keys,
                       grouping=grouping_guesses.get(cond))

    attacked = name_columns(columns)
    for k, col in enumerate(attacked, start=1):
        if progress is not None:
            progress(f"attack suite: column {k} of {len(attacked)} ({col})")
        field, encoding = column_field(col)
        if col in TYPO_GRAPH_COLUMNS:
            typo_graph_rows(col, field)
            continue
        if columns[col]["type"] == "token_list":
            size = _LIST_SIZE.get(encoding.split("+")[0])
            # Nickname lists are scored by the whole list's key (a nickname's first token may be its formal name's).
            keys = whole_list_keys(pooled[col]) if col in NICKNAME_EDGE_COLUMNS else None
            for cond in present_conditions:
                score_rows(col, "frequency alignment of list tokens, record vote" + _cond_label(cond + ("list size",)),
                           list_frequency_attack(pooled, col, population, field, cond, list_size=size), keys)
            if col in NICKNAME_EDGE_COLUMNS:
                # Lists of different but nickname-related names at one date / address share their common forms.
                for cond in present_conditions:
                    score_rows(col, "nickname-edge matching (shared forms between names)" + _cond_label(cond),
                               nickname_edge_attack(pooled, col, population, field, cond), keys)
            continue
        if columns[col]["type"] == "bloom":
            hardening = set(columns[col]["encoding"].split("+")[1:])
            bloom_conditions: list[tuple[str, ...]] = [c for c in present_conditions if c in ((), ("dob__year",))]
            if "salt-postcode" in hardening:
                bloom_conditions += postcode_groupings(set(pooled.columns))
            for cond in bloom_conditions:
                guesses = bloom_cluster_attack(pooled, col, population, field, int(bloom.get("ngram", 2)),
                                               int(bloom.get("hashes", 15)),
                                               structured=not ({"fold", "balanced"} & hardening), conditions=cond,
                                               min_group=min_group_of(cond))
                # Small groups (two records at one postcode) are partly guessed by the grouping alone: the gate
                # counts the attack above that baseline (risk_of), as it counts row order above chance.
                baseline = (group_baseline_guesses(pooled, col, population, field, cond, min_group_of(cond))
                            if cond else None)
                score(col, "similarity clustering + pattern mining" + _cond_label(cond), guesses, baseline)
            continue
        size_col = f"{field}__del1" if f"{field}__del1" in pooled.columns else None
        if size_col is not None and pooled[size_col].map(
                lambda v: len(v) if isinstance(v, (list, np.ndarray)) else None).dropna().nunique() <= 1:
            size_col = None  # padded lists (one size): the size tells nothing, and no reference name has it
        size_label: tuple[str, ...] = (f"{field} list size",) if size_col else ()
        for cond in present_conditions:
            guesses = conditioned_frequency_attack(pooled, col, population, field, ENCODING_TRANSFORMS[encoding],
                                                   cond, size_column=size_col)
            label = "frequency alignment" + _cond_label(cond + size_label)
            score(col, label, guesses)

    for field in ("given_name", "surname", "full_name"):  # records linked by any shared token of one name
        linked = graph_columns(columns, field)
        if linked and any(columns[c]["type"] == "token_list" or "+" in columns[c]["encoding"] for c in linked):
            # Scored on each record's first token of any linked column (a record without a date of birth
            # still has its name x postcode token).
            first_token = pd.Series([None] * len(pooled), index=pooled.index, dtype=object)
            for c in linked:
                first_token = first_token.fillna(pooled[c].map(
                    lambda v: (v[0] if len(v) else None) if isinstance(v, (list, np.ndarray)) else v))
            label, encoding = f"{field} (records linked by {', '.join(linked)})", "+".join(
                columns[c]["encoding"] for c in linked)
            for cond in [()] + [(c,) for c in ("sex__exact", "postcode__district") if c in pooled.columns]:
                score_rows(label, "token-sharing graph clustering" + _cond_label(cond),
                           token_graph_attack(pooled, linked, population, field, cond), first_token, encoding)

    for p in parts:  # row order: per file
        for field in ("surname", "given_name"):
            found = [c for c in name_columns(p.columns) if column_field(c)[0] == field
                     and column_field(c)[1] in ("exact", "bloom")]
            if not found:
                continue
            col = found[0]
            clear = p.oracle.get(col, {})
            names = p.records[col].map(lambda v, m=clear: m.get(v) if v is not None else None)
            result = row_order_attack(names, population[field].dropna().astype(str))
            rows.append({"partner": p.source, "column": f"{field} (row order)", "encoding": "file order",
                         "attack": "row-order inference (sorted by name)",
                         "records_with_value": int(names.notna().sum()),
                         "records_reidentified_share": result["share"], "chance_share": result["chance"],
                         "initials_share": result["initial_share"], "initials_chance": result["initial_chance"]})
    return rows


def whole_list_keys(lists: pd.Series) -> pd.Series:
    """Per record, the oracle's key of its whole token list (str of :func:`list_key`; None without a list)."""
    return lists.map(lambda v: str(list_key(compact_one(list(v))))
                     if isinstance(v, (list, np.ndarray)) and len(v) else None)


def graph_columns(columns: dict[str, dict[str, Any]], field: str) -> list[str]:
    """A name field's columns whose tokens each stand for one name (so records sharing one share the name):
    exact tokens, composite or not, and composite lists; nickname and deletion lists link other names. Salted
    Bloom filters without BLIP too: two equal filters hold the same name with the same salt (date of birth,
    postcode), so equality links records as a composite token does."""
    def links(c: str, spec: dict[str, Any]) -> bool:
        if spec["type"] == "bloom":
            hardening = str(spec["encoding"]).split("+")[1:]
            return any(h.startswith("salt-") for h in hardening) and not any(h.startswith("blip") for h in hardening)
        return column_field(c)[1].split("+")[0] in GRAPH_ENCODINGS and spec["type"] in ("token", "token_list")

    return [c for c, spec in columns.items() if column_field(c) == (field, c.partition("__")[2]) and links(c, spec)]


GRAPH_ENCODINGS = ("exact", "exact_pc", "near_dob", "near_pc")


def alias_count(name: str) -> int:
    """How many tokens an unpadded nickname list of ``name`` holds (the attacker computes it from the public lists)."""
    from linkage.encode.evidence import name_aliases

    return len(name_aliases(name))


# How long an unpadded list of each kind is for a reference name (what the attacker can compute).
_LIST_SIZE = {"alias": alias_count, "del1": deletion_list_size}


def _cond_label(cond: tuple[str, ...]) -> str:
    return "" if not cond else " | " + ", ".join(c.replace("__exact", "").replace("__", " ") for c in cond)


def risk_of(row: dict[str, Any]) -> float:
    """What a row contributes to the gate: the re-identified share; for a Bloom group attack, the share of records
    it names that the grouping alone does not (``excess_share``; ``baseline_share`` is the grouping's own); for
    row order, the excess over chance beyond three standard errors (on a small file, position matches names by
    luck alone)."""
    share = float(row["records_reidentified_share"] or 0.0)
    if "excess_share" in row:  # a group attack: records it names that the grouping alone does not
        return float(row["excess_share"] or 0.0)
    if "chance_share" in row:
        n = max(int(row["records_with_value"]), 1)

        def excess(observed: float, chance: float) -> float:
            margin = 3 * math.sqrt(max(chance, 1 / n) * (1 - chance) / n)
            return max(0.0, observed - chance - margin)

        return round(max(excess(share, row["chance_share"]), excess(row["initials_share"], row["initials_chance"])), 4)
    return share


def strongest(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per partner (and all partners): the row with the highest gate risk."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["partner"] not in best or risk_of(r) > risk_of(best[r["partner"]]):
            best[r["partner"]] = r
    return best


def audit_extracts(items: list[tuple[str | Path, str | Path, str | Path]], key: bytes,
                   population: pd.DataFrame) -> dict[str, Any]:
    """Cross-partner audit: ``items`` are (encoded dir, partner config, raw extract); attacker pools them all."""
    parts = [load_part(enc, cfg, key, raw) for enc, cfg, raw in items]
    rows = run_suite(parts, population)
    best = strongest(rows)
    return {"attacks": rows, "strongest": {k: {"attack": v["attack"], "column": v["column"], "risk": risk_of(v)}
                                           for k, v in best.items()},
            "risk": max((risk_of(r) for r in rows), default=0.0)}


# Groups an attacker forms from the postcode tokens released next to a postcode-salted filter. Within the
# full postcode (the salt itself) the same name gives the same filter, so even two records are worth
# attacking; sector and district groups hold filters of many postcodes, which share no positions.
POSTCODE_GROUPINGS: list[tuple[str, ...]] = [("postcode__district",), ("postcode__sector",), ("postcode__exact",),
                                             ("postcode__exact", "dob__year")]


def postcode_groupings(columns: set[str]) -> list[tuple[str, ...]]:
    """The postcode groupings whose tokens the extracts carry."""
    return [g for g in POSTCODE_GROUPINGS if set(g) <= columns]


def min_group_of(conditions: tuple[str, ...]) -> int:
    """Smallest group a Bloom attack mines: two within a full postcode or sector, else the usual minimum."""
    return 2 if {"postcode__exact", "postcode__sector"} & set(conditions) else MIN_GROUP
