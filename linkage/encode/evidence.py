"""Extra fuzzy evidence that survives keyed hashing: dates of birth one digit apart, and name aliases.

* **Date-of-birth digit neighbourhood.** The eight digits YYYYMMDD and every string made by deleting one
  of them. Two dates share an element when one digit was mistyped, dropped or two adjacent digits were
  swapped (1987 -> 1978 is not caught; 1987 -> 1988 is), which Splink scores as a Levenshtein <= 1 level on
  clear dates. Well-formed but non-calendar dates (a month of 81) enter here only, never as valid dates.
* **Name aliases.** A given name's canonical forms: the name itself and the formal names it is a
  nickname of (Bill -> William, Robert; Peggy -> Margaret). Two records agree on this level when their
  sets share a name. The list is the ``nicknames`` package (Apache-2.0, hand-curated English names from
  carltonnorthern/nicknames), plus a short supplement of British diminutives it lacks (Gaz, Baz, Del,
  Tel, Jez, Bex, Alfie…), in ``linkage/data/uk_nicknames.csv``.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from nicknames import NickNamer

from linkage import normalise as nz

UK_SUPPLEMENT = Path(__file__).resolve().parents[1] / "data" / "uk_nicknames.csv"


def dob_digit_neighbourhood(digits: str) -> list[str]:
    """The YYYYMMDD string and its one-deletion variants (see module docstring)."""
    return nz.deletion_neighbourhood(digits)


@lru_cache(maxsize=1)
def _supplement() -> dict[str, frozenset[str]]:
    table: dict[str, set[str]] = {}
    with UK_SUPPLEMENT.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            table.setdefault(row["nickname"].strip().lower(), set()).add(row["formal"].strip().lower())
    return {k: frozenset(v) for k, v in table.items()}


@lru_cache(maxsize=1)
def _namer() -> NickNamer:
    return NickNamer()


def name_aliases(name: str) -> list[str]:
    """The name and the formal names it may be short for, sorted (lower-case input expected)."""
    out = {name}
    out.update(_namer().canonicals_of(name))
    out.update(_supplement().get(name, ()))
    return sorted(out)
