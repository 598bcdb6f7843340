"""Reference frequencies and the frequency-alignment attack on keyed token columns.

An attacker without the key still sees how often each token occurs. Ranking the tokens by count and
the values of a public frequency list (census-style name counts) by weight, and pairing the two rankings,
re-identifies the common values whenever the two distributions are similar and the top ranks are well
separated. This module owns the reference list format (CSV ``field,value,weight``), the transformations
that turn a reference name into what a column encodes (exact, Metaphone, initial), and the attack itself.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jellyfish
import pandas as pd

from linkage import normalise as nz
from linkage.errors import LinkageInputError

Reference = dict[str, dict[str, float]]  # field -> clear value -> relative weight
Weights = Mapping[str, float]  # what an attacker aligns against: (transformed) clear value -> weight

SHIPPED_REFERENCE = "name_frequencies.csv"
TOP_RANKS = 100  # the attacker pairs only the best-separated head of the two rankings


def load_reference(path: str | Path | None = None) -> Reference:
    """Read a reference frequency CSV (``field,value,weight``); ``None`` loads the shipped UK name list."""
    if path is None:
        text = resources.files("linkage.data").joinpath(SHIPPED_REFERENCE).read_text(encoding="utf-8")
        name = f"linkage/data/{SHIPPED_REFERENCE}"
    else:
        p = Path(path)
        if not p.is_file():
            raise LinkageInputError("reference frequency file not found", file=str(p))
        text, name = p.read_text(encoding="utf-8"), str(p)
    ref: Reference = {}
    reader = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    if reader.fieldnames is None or not {"field", "value", "weight"} <= set(reader.fieldnames):
        raise LinkageInputError("reference needs the columns field, value, weight", file=name)
    for i, row in enumerate(reader, start=2):
        try:
            weight = float(row["weight"])
        except (TypeError, ValueError):
            raise LinkageInputError("weight is not a number", file=name, row=i, field="weight") from None
        field = (row["field"] or "").strip()
        ref.setdefault(field, {})
        ref[field][row["value"]] = ref[field].get(row["value"], 0.0) + weight
    return ref


def reference_from_clear(frame: pd.DataFrame, columns: dict[str, str]) -> Reference:
    """A reference built from clear values (e.g. a synthetic population standing in for census figures).

    ``columns`` maps field (given_name, surname) to the frame's column.
    """
    return {field: {str(k): float(v) for k, v in frame[col].dropna().astype(str).value_counts().items()}
            for field, col in columns.items()}


def core_name(raw: str, field: str) -> str | None:
    """The value a name column encodes: first given-name part, or all surname parts joined."""
    parts = nz.name_parts(raw)
    if not parts:
        return None
    return parts[0] if field == "given_name" else "".join(parts)


# What each token encoding holds, as a function of the core name.
ENCODING_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "exact": lambda v: v, "given_shared": lambda v: v, "surname_shared": lambda v: v, "exact_pc": lambda v: v,
    "phonetic": jellyfish.metaphone, "initial": lambda v: v[0],
    "phonetic_pc": jellyfish.metaphone,
    "full": lambda v: v,  # name__full: "given surname" (core parts), field full_name
}


def column_field(column: str) -> tuple[str, str]:
    """(reference field, encoding) of a token column: ``name__given_shared`` reads as given_name/exact."""
    field, _, encoding = column.partition("__")
    if field == "name" and encoding == "full":
        return "full_name", "full"
    if field == "name" and encoding in ("given_shared", "surname_shared"):
        return ("given_name" if encoding == "given_shared" else "surname"), encoding
    return field, encoding


def transformed_reference(ref: Reference, field: str, encoding: str) -> dict[str, float]:
    """Reference weights of what the column encodes (names merged when they share a code)."""
    transform = ENCODING_TRANSFORMS.get(encoding)
    out: dict[str, float] = {}
    if transform is None or field not in ref:
        return out
    for value, weight in ref[field].items():
        core = core_name(value, field)
        if core:
            key = transform(core)
            out[key] = out.get(key, 0.0) + weight
    return out


def align(observed: Mapping[Any, float], reference: Mapping[Any, float], top: int = TOP_RANKS) -> dict:
    """Pair the ``top`` most frequent observed values with the ``top`` heaviest reference values by rank.

    Returns {observed value: guessed reference value}. Ties in the observed counts are broken by the
    value itself, which carries no information (a keyed token or filter), so the pairing is fair.
    """
    obs = sorted(observed.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    ref = sorted(reference.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return {o[0]: r[0] for o, r in zip(obs, ref, strict=False)}


def frequency_attack(values: pd.Series, reference: Weights, top: int = TOP_RANKS) -> dict:
    """The attack on one column: ``values`` holds the column's encoded value for each record."""
    return align(Counter(values.dropna().tolist()), reference, top)
