"""Statistical disclosure control for everything a researcher receives.

All released counts of one cohort release live in one :class:`CellRegistry`, keyed by what they count
(e.g. ``("factor", "substance_use", "gbh")``), so a number shown in two tables is suppressed in both.
Additive relations between cells (a total and its parts) are registered as constraints. Then:

1. primary suppression: counts in ``suppress_min..suppress_max`` (default 1–9, the 10-5 rule) are withheld;
2. secondary suppression: more cells are withheld until no primary cell can be solved for exactly
   from the released cells and the constraints (checked with linear algebra, not a heuristic);
3. released counts are rounded to the nearest ``rounding_base`` (default 5).

Hidden cells (e.g. "people without the factor") are never released but take part in constraints, so
a small complement ("all but two") is protected too. Percentages and means are derived from released
counts only (see :func:`released_share`), and person-level tables get k-anonymity. Every rule that fires
is written to a log. Whether the result survives an intruder is checked by ``cohort.intruder``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
from threadpoolctl import threadpool_limits

from linkage.cohort.config import DisclosureSettings
from linkage.graph import components

Key = Hashable


@dataclass
class DisclosureLog:
    """Which rules fired, on which table, how often (stored in the cohort manifest)."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, table: str, rule: str, cells: int, detail: str = "") -> None:
        if cells:
            self.entries.append({"table": table, "rule": rule, "cells": int(cells), "detail": detail})

    def summary(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for e in self.entries:
            out[e["rule"]] += e["cells"]
        return dict(sorted(out.items()))


def round_to_base(n: int, base: int) -> int:
    """Round half up to the nearest multiple of ``base`` (0 stays 0)."""
    return int(math.floor(n / base + 0.5) * base) if base > 1 else int(n)


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval for a proportion k/n (as fractions)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def determined_cells(values: dict[Key, int], constraints: list[tuple[Key, list[Key]]],
                     unknown: set[Key]) -> set[Key]:
    """Unknown cells whose value follows exactly from the known cells and the constraints.

    Each constraint ``total = sum(parts)`` is one linear equation in the unknowns. A cell is determined
    exactly when its unit vector lies in the row space of that system, i.e. when every solution of the
    homogeneous system is zero in that coordinate (its row of the null-space basis is zero).
    """
    order = sorted(unknown, key=repr)
    pos = {k: i for i, k in enumerate(order)}
    rows: list[np.ndarray] = []
    for total, parts in constraints:
        row = np.zeros(len(order))
        if total in pos:
            row[pos[total]] += 1.0
        for p in parts:
            if p in pos:
                row[pos[p]] -= 1.0
        if row.any():
            rows.append(row)
    if not rows:
        return set()
    # Connected blocks of unknowns (joined by sharing an equation) are independent; solving them separately
    # keeps the decompositions small.
    shared = [(int(nz[0]), int(j)) for nz in map(np.flatnonzero, rows) for j in nz[1:]]
    blocks = components(list(range(len(order))), shared)
    determined: set[Key] = set()
    matrix = np.vstack(rows)
    for cols in blocks:
        sub = matrix[:, cols]
        sub = sub[np.abs(sub).sum(axis=1) > 0]
        if not len(sub):
            continue
        if len(cols) == 1:  # one unknown in an equation with known cells: solvable
            determined.add(order[cols[0]])
            continue
        # e_i lies in the row space iff the orthogonal projector onto it has 1 on its diagonal at i. A
        # pivoted QR of the transpose gives an orthonormal basis of the row space (cheaper than an SVD).
        q, r, _ = scipy.linalg.qr(sub.T, mode="economic", pivoting=True)
        diag = np.abs(np.diag(r))
        rank = int((diag > 1e-9 * max(1.0, diag[0] if len(diag) else 1.0)).sum())
        in_row_space = (q[:, :rank] ** 2).sum(axis=1)
        for local, i in enumerate(cols):
            if in_row_space[local] > 1 - 1e-7:
                determined.add(order[i])
    return determined


@dataclass
class CellRegistry:
    """Every released count of one cohort release, with additive constraints, protected together."""

    settings: DisclosureSettings
    values: dict[Key, int] = field(default_factory=dict)
    hidden: set[Key] = field(default_factory=set)
    constraints: list[tuple[Key, list[Key]]] = field(default_factory=list)
    suppressed: dict[Key, str] = field(default_factory=dict)  # key -> rule that withheld it
    keep_if_possible: set[Key] = field(default_factory=set)  # e.g. group sizes: withheld only as a last resort
    never_withhold: set[Key] = field(default_factory=set)  # known to anyone from the structure (never a shield)

    def add(self, key: Key, value: int, hidden: bool = False) -> Key:
        value = int(value)
        if key in self.values and self.values[key] != value:
            raise ValueError(f"cell {key!r} registered twice with different values")
        self.values[key] = value
        if hidden:
            self.hidden.add(key)
        return key

    def constrain(self, total: Key, parts: list[Key]) -> None:
        """``total`` equals the sum of ``parts`` (all must be registered)."""
        if parts:
            self.constraints.append((total, list(parts)))

    def withhold(self, key: Key, rule: str) -> None:
        self.suppressed.setdefault(key, rule)

    def sensitive(self, key: Key) -> bool:
        return self.settings.sensitive(self.values[key])

    def check_consistent(self) -> None:
        """Every registered relation must hold on the true values (a wrong one protects nothing)."""
        for total, parts in self.constraints:
            got = sum(self.values[p] for p in parts)
            if self.values[total] != got:
                raise ValueError(f"relation {total!r} = sum of {len(parts)} parts does not hold "
                                 f"({self.values[total]} != {got}); the table structure is registered wrongly")

    def unknown(self) -> set[Key]:
        return set(self.suppressed) | self.hidden

    def protect(self) -> None:
        """Primary then secondary suppression (idempotent; call after every cell is registered)."""
        self.check_consistent()
        # Many small factorisations: BLAS threads only add contention (15x slower on a busy machine).
        with threadpool_limits(1):
            self._protect()

    def _protect(self) -> None:
        for key in sorted(self.values, key=repr):
            if key not in self.hidden and self.sensitive(key):
                self.withhold(key, "primary_small_count")
        members: dict[Key, list[int]] = {}
        for i, (total, parts) in enumerate(self.constraints):
            for k in [total, *parts]:
                members.setdefault(k, []).append(i)
        self._add_complements(members)
        self._prune_complements()

    def _exposed(self) -> list[Key]:
        determined = determined_cells(self.values, self.constraints, self.unknown())
        return sorted((k for k in determined if self.sensitive(k) or k in self.suppressed), key=repr)

    def _prune_complements(self) -> None:
        """Greedy choices over-suppress: release each complementary cell again (largest first, group
        sizes before others) whenever the table stays protected without it."""
        order = sorted((k for k, rule in self.suppressed.items() if rule == "secondary_complementary"),
                       key=lambda k: (k not in self.keep_if_possible, -self.values[k], repr(k)))
        for key in order:
            rule = self.suppressed.pop(key)
            if self._exposed():
                self.suppressed[key] = rule

    def _add_complements(self, members: dict[Key, list[int]]) -> None:
        while True:
            determined = determined_cells(self.values, self.constraints, self.unknown())
            # A withheld cell must not be solvable either (else its "c" says nothing and it cannot shield
            # a small cell); a hidden cell only matters when it is itself small.
            exposed = sorted((k for k in determined if self.sensitive(k) or k in self.suppressed), key=repr)
            if not exposed:
                return
            # Withhold the best-placed cell next to any exposed cell; if their own constraints are
            # exhausted, next to any other solvable withheld cell (that is how they are pinned down).
            pick = self._complement_for(exposed, members)
            if pick is None:
                pick = self._complement_for(sorted(determined, key=repr), members)
            if pick is None:
                raise RuntimeError(f"cannot protect cell {exposed[0]!r}")  # pragma: no cover
            self.withhold(pick, "secondary_complementary")

    def _complement_for(self, cells: list[Key], members: dict[Key, list[int]]) -> Key | None:
        best: tuple[Any, Key] | None = None
        for cell in cells:
            for ci in members.get(cell, []):
                total, parts = self.constraints[ci]
                for k in [total, *parts]:
                    if k in self.suppressed or k in self.hidden or k in self.never_withhold:
                        continue
                    # Prefer withholding a part to a total, a non-zero cell to a zero, and small cells.
                    rank = (k in self.keep_if_possible, k == total, self.values[k] == 0, self.values[k], repr(k))
                    if best is None or rank < best[0]:
                        best = (rank, k)
        return None if best is None else best[1]

    def released(self, key: Key) -> int | None:
        """The released (rounded) value, or None when withheld or hidden."""
        if key in self.suppressed or key in self.hidden:
            return None
        return round_to_base(self.values[key], self.settings.rounding_base)

    def is_withheld(self, key: Key) -> bool:
        return key in self.suppressed or key in self.hidden

    def log_to(self, log: DisclosureLog, table: str, keys: set[Key]) -> None:
        """Log the rules that withheld or rounded any of ``keys`` (the cells one table shows)."""
        rules = Counter(self.suppressed[k] for k in keys if k in self.suppressed)
        for rule, n in sorted(rules.items()):
            log.add(table, rule, n)
        rounded = sum(1 for k in keys if not self.is_withheld(k)
                      and round_to_base(self.values[k], self.settings.rounding_base) != self.values[k])
        log.add(table, f"rounded_to_nearest_{self.settings.rounding_base}", rounded)


def released_share(n_released: int | None, den_released: int | None,
                   settings: DisclosureSettings) -> tuple[float, float, float] | None:
    """(pct, ci_low, ci_high) from the *released* numerator and denominator, or None when not shown.

    A percentage computed from unrounded counts pins both counts (58.3% of about 10 has one solution,
    7/12), so the % and its 95% Wilson interval are derived from the protected counts only, and only when
    both are released and the released denominator reaches ``stat_min_contributors``.
    """
    if n_released is None or den_released is None or den_released < settings.stat_min_contributors:
        return None
    lo, hi = wilson_interval(n_released, den_released)
    return round(100.0 * n_released / den_released, 1), round(100 * lo, 1), round(100 * hi, 1)


def stat_allowed(contributors: int, settings: DisclosureSettings) -> bool:
    return contributors >= settings.stat_min_contributors


def _coarsen(df: pd.DataFrame, column: str) -> pd.Series:
    """One generalisation step: a quarter becomes its year, anything else becomes '*'."""
    if column == "index_quarter":
        s = df[column].astype("string")
        already_year = ~s.str.contains("-Q", regex=False).fillna(False)
        return s.str.slice(0, 4).where(~already_year, "*").astype("string")
    return pd.Series("*", index=df.index, dtype="string")


def k_anonymise(df: pd.DataFrame, quasi_identifiers: list[str], generalisation: list[str],
                settings: DisclosureSettings, log: DisclosureLog, table: str) -> pd.DataFrame:
    """Coarsen quasi-identifiers (global recoding, in the configured order) until at most
    ``max_row_suppression`` of rows sit in classes smaller than k; then drop those rows."""
    k = settings.k_anonymity
    out = df.copy()
    qis = [q for q in quasi_identifiers if q in out.columns]

    def small_rows(frame: pd.DataFrame) -> pd.Series:
        if not qis:
            return pd.Series(len(frame) < k, index=frame.index)
        sizes = frame.groupby(qis, dropna=False)[qis[0]].transform("size")
        return sizes < k

    steps = [c for c in generalisation if c in qis]
    step = 0
    while len(out) and small_rows(out).mean() > settings.max_row_suppression:
        if step >= len(steps) * 2:
            break
        col = steps[step % len(steps)] if steps else None
        step += 1
        if col is None:
            break
        before = out[col].astype("string").copy()
        out[col] = _coarsen(out, col)
        if not before.equals(out[col]):
            log.add(table, f"k_anonymity_generalised:{col}", int((before != out[col]).fillna(True).sum()))
    drop = small_rows(out) if len(out) else pd.Series(dtype=bool)
    log.add(table, f"k_anonymity_rows_dropped(k={k})", int(drop.sum()))
    return out[~drop].reset_index(drop=True) if len(out) else out
