"""Disclosure-control rules on adversarial tables: small counts, margins, complements, k-anonymity.

Recoverability is checked here with a different method from the library's (rank of the constraint
system with and without the cell's unit vector, rather than a null-space basis), so a bug in one is
not mirrored in the other.
"""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from linkage.cohort.config import DisclosureSettings
from linkage.cohort.disclosure import (
    CellRegistry,
    DisclosureLog,
    determined_cells,
    k_anonymise,
    released_share,
    round_to_base,
    stat_allowed,
    wilson_interval,
)

SETTINGS = DisclosureSettings()


def solvable(values, constraints, unknown, cell) -> bool:
    """Independent check: is ``cell`` fixed by the constraints once the known cells are substituted?"""
    order = sorted(unknown, key=repr)
    pos = {k: i for i, k in enumerate(order)}
    rows = []
    for total, parts in constraints:
        row = np.zeros(len(order))
        if total in pos:
            row[pos[total]] += 1
        for p in parts:
            if p in pos:
                row[pos[p]] -= 1
        if row.any():
            rows.append(row)
    if not rows:
        return False
    a = np.vstack(rows)
    e = np.zeros(len(order))
    e[pos[cell]] = 1
    return np.linalg.matrix_rank(np.vstack([a, e])) == np.linalg.matrix_rank(a)


def grid_registry(grid: list[list[int]], settings: DisclosureSettings = SETTINGS) -> CellRegistry:
    """A rows x columns table with row totals, column totals and a grand total."""
    reg = CellRegistry(settings)
    n_rows, n_cols = len(grid), len(grid[0])
    for i, j in itertools.product(range(n_rows), range(n_cols)):
        reg.add(("cell", i, j), grid[i][j])
    for i in range(n_rows):
        reg.add(("row", i), sum(grid[i]))
        reg.constrain(("row", i), [("cell", i, j) for j in range(n_cols)])
    for j in range(n_cols):
        reg.add(("col", j), sum(grid[i][j] for i in range(n_rows)))
        reg.constrain(("col", j), [("cell", i, j) for i in range(n_rows)])
    reg.add(("total",), sum(map(sum, grid)))
    reg.constrain(("total",), [("row", i) for i in range(n_rows)])
    reg.constrain(("total",), [("col", j) for j in range(n_cols)])
    return reg


def assert_protected(reg: CellRegistry) -> None:
    with threadpool_limits(1):  # many small rank computations: BLAS threads only contend
        _assert_protected(reg)


def _assert_protected(reg: CellRegistry) -> None:
    unknown = reg.unknown()
    for key, value in reg.values.items():
        released = reg.released(key)
        if released is not None:
            assert not (1 <= released <= 9), key
            assert released % SETTINGS.rounding_base == 0, key
            assert abs(released - value) <= SETTINGS.rounding_base / 2, key
        if 1 <= value <= 9:
            assert key in unknown, key
            assert not solvable(reg.values, reg.constraints, unknown, key), key


def test_single_small_cell_in_a_row_forces_a_complement():
    reg = grid_registry([[3, 20, 30]])
    reg.protect()
    assert reg.suppressed[("cell", 0, 0)] == "primary_small_count"
    assert "secondary_complementary" in reg.suppressed.values()
    assert_protected(reg)


def test_classic_two_by_two_needs_four_suppressions():
    # One small cell in a 2x2 table with all margins: a rectangle of four cells must go.
    reg = grid_registry([[2, 40], [35, 50]])
    reg.protect()
    cells = {k for k in reg.suppressed if k[0] == "cell"}
    assert len(cells) == 4
    assert_protected(reg)


def test_two_small_cells_in_one_row_protect_each_other_but_not_across_columns():
    reg = grid_registry([[2, 3, 50], [20, 30, 40]])
    reg.protect()
    assert_protected(reg)


@pytest.mark.parametrize("seed", range(40))
def test_random_tables_never_leak_a_small_cell(seed):
    rng = random.Random(seed)
    n_rows, n_cols = rng.randint(1, 5), rng.randint(2, 6)
    grid = [[rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 9, 12, 30, 80]) for _ in range(n_cols)] for _ in range(n_rows)]
    reg = grid_registry(grid)
    reg.protect()
    assert_protected(reg)


def test_hidden_complement_protects_all_but_a_few():
    # 48 of 50 people have the factor: the count itself is large, but "all but 2" is a disclosure.
    reg = CellRegistry(SETTINGS)
    reg.add("people", 50)
    reg.add("with", 48)
    reg.add("without", 2, hidden=True)
    reg.constrain("people", ["with", "without"])
    reg.protect()
    assert reg.released("with") is None and reg.released("without") is None
    assert reg.released("people") == 50
    assert_protected(reg)


def test_partition_across_subgroups_is_protected_in_every_table_at_once():
    # The same sub-group sizes feed two tables; one registry keeps them consistent.
    reg = CellRegistry(SETTINGS)
    for key, v in {("people", "all"): 40, ("people", "a"): 3, ("people", "b"): 37}.items():
        reg.add(key, v)
    reg.constrain(("people", "all"), [("people", "a"), ("people", "b")])
    for g, v in {"all": 20, "a": 2, "b": 18}.items():
        reg.add(("factor", g), v)
    reg.constrain(("factor", "all"), [("factor", "a"), ("factor", "b")])
    reg.protect()
    assert reg.released(("people", "b")) is None and reg.released(("factor", "b")) is None
    assert reg.released(("people", "all")) == 40
    assert_protected(reg)


def test_determined_cells_agrees_with_the_whole_system_solved_at_once():
    """The library solves each connected block of unknowns on its own (blocks from ``linkage.graph``); that must
    decide every cell as the whole system does (rank with and without the cell's unit vector)."""
    rng = random.Random(7)
    outcomes = {True: 0, False: 0}
    multi_block = 0
    for _ in range(150):
        values, constraints = {}, []
        for t in range(rng.randint(2, 4)):  # independent small tables: several blocks per system
            n = rng.randint(2, 4)
            parts = [(t, "cell", i) for i in range(n)]
            for key in parts:
                values[key] = rng.randint(0, 9)
            values[(t, "total")] = sum(values[k] for k in parts)
            constraints.append(((t, "total"), parts))
            if n >= 3 and rng.random() < 0.5:  # a nested subtotal, so blocks are not all one equation
                values[(t, "sub")] = values[parts[0]] + values[parts[1]]
                constraints.append(((t, "sub"), parts[:2]))
        unknown = {k for k in values if rng.random() < 0.5}
        got = determined_cells(values, constraints, unknown)
        assert got <= unknown
        for cell in unknown:
            expected = solvable(values, constraints, unknown, cell)
            assert (cell in got) == expected, (constraints, sorted(unknown), cell)
            outcomes[expected] += 1
        multi_block += len({k[0] for k in unknown}) > 1
    assert min(outcomes.values()) > 50 and multi_block > 50  # both answers, and many multi-block systems, seen


def test_determined_cells_matches_hand_cases():
    values = {"t": 10, "a": 3, "b": 7}
    cons = [("t", ["a", "b"])]
    assert determined_cells(values, cons, {"a"}) == {"a"}
    assert determined_cells(values, cons, {"a", "b"}) == set()
    assert determined_cells(values, cons, {"a", "b", "t"}) == set()


def test_rounding_and_thresholds():
    assert [round_to_base(n, 5) for n in (0, 5, 7, 8, 12, 13, 113)] == [0, 5, 5, 10, 10, 15, 115]
    # percentages come from the released counts only, and only for a released denominator of 10+
    assert released_share(None, 100, SETTINGS) is None and released_share(5, None, SETTINGS) is None
    assert released_share(5, 5, SETTINGS) is None
    assert released_share(5, 15, SETTINGS)[0] == 33.3
    assert not stat_allowed(9, SETTINGS) and stat_allowed(10, SETTINGS)
    lo, hi = wilson_interval(2, 5)
    assert math.isclose(lo, 0.1176, abs_tol=1e-4) and math.isclose(hi, 0.7693, abs_tol=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0


def _people(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    return pd.DataFrame({
        "subgroup": [rng.choice(["murder_attempt", "gbh", "gbh", "gbh"]) for _ in range(n)],
        "age_band": [rng.choice(["14-15", "16-17", "18-20", "21-24", "unknown"]) for _ in range(n)],
        "ethnic_group": [rng.choice(["White", "White", "White", "Asian", "Black", "Mixed"]) for _ in range(n)],
        "index_quarter": [f"{rng.choice([2019, 2020, 2021])}-Q{rng.randint(1, 4)}" for _ in range(n)],
        "area": [rng.choice(["Central Leicester", "Charnwood", "East Leicester", "NW Leics"]) for _ in range(n)],
        "n_factors": [rng.randint(0, 9) for _ in range(n)],
    })


@pytest.mark.parametrize("n,seed", [(30, 1), (120, 2), (400, 3)])
def test_k_anonymity_holds_on_every_quasi_identifier_class(n, seed):
    qis = ["subgroup", "age_band", "ethnic_group", "index_quarter", "area"]
    log = DisclosureLog()
    out = k_anonymise(_people(n, seed), qis, ["index_quarter", "area", "ethnic_group", "age_band"],
                      SETTINGS, log, "person_level")
    if len(out):
        assert out.groupby(qis, dropna=False).size().min() >= SETTINGS.k_anonymity
    assert any(e["rule"].startswith("k_anonymity") for e in log.entries)
    # Generalisation is global recoding: a coarsened column holds no finer value anywhere.
    if (out["index_quarter"].str.len() == 4).any():
        assert not out["index_quarter"].str.contains("-Q").any()
