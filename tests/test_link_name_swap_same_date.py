"""A name order swap with the same date of birth must count as name evidence in the privacy-first profile.

There the per-name exact tokens are salted with the date, the full-name composites are order-free, and the two
comparisons share the work: the per-name comparisons stay neutral where the full-name composites agree (so one
agreement counts once), and the full-name comparison stays neutral where the dates agree (the per-name tokens
compare the names then). A same-date swap (Jack McCarthy / McCarthy Jack) satisfies both neutral conditions, so
before the fix it weighed nothing in any name comparison and was lost on FEBRL4. A same-date swap is now counted in
the per-name order-swapped levels (as without the composites); a swap with another date stays with the full-name
comparison.

Each comparison's levels are evaluated as Splink renders them for DuckDB, first matching level wins."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from linkage.link.config import LinkConfig
from linkage.link.model import FULL_NEAR_DOB_LABEL, FULL_PC_LABEL, build_comparisons

SWAP_LABEL = "matches the other name (order swapped)"
# The shipped profile's name and date columns (no Bloom filters: every case here is decided before them).
COLS = {"given_name__exact", "surname__exact", "name__full", "full_name__near_dob", "full_name__exact_pc",
        "full_name__near_pc", "name__parts", "name__given_shared", "name__surname_shared", "dob__exact",
        "dob__del1", "postcode__exact"}


def _record(given: str, surname: str, dob: str, postcode: str) -> dict[str, Any]:
    """Stand-in tokens: the clear text stands for the keyed token, salted as the shipped profile salts it."""
    first, second = sorted((given, surname))  # the full-name composites are order-free
    near = [dob] + [dob[:i] + dob[i + 1:] for i in range(len(dob))]  # the date's one-deletion neighbourhood
    return {
        "given_name__exact": f"g:{given}:{dob}", "surname__exact": f"s:{surname}:{dob}",
        "name__full": f"{first} {second}", "full_name__near_dob": [f"{first} {second}:{d}" for d in near],
        "full_name__exact_pc": f"{first} {second}:{postcode}", "full_name__near_pc": [f"{first} {second}:{postcode}"],
        "name__parts": [given, surname], "name__given_shared": given, "name__surname_shared": surname,
        "dob__exact": dob, "dob__del1": near[1:], "postcode__exact": postcode,
    }


def _levels(left: dict[str, Any], right: dict[str, Any]) -> dict[str, str]:
    """Per comparison, the label of the first level the pair satisfies."""
    row = {f"{c}_l": v for c, v in left.items()} | {f"{c}_r": v for c, v in right.items()}
    out = {}
    with duckdb.connect() as con:
        con.execute("CREATE TABLE p AS SELECT " + ", ".join(f"$v{i} AS \"{c}\"" for i, c in enumerate(row)),
                    {f"v{i}": v for i, v in enumerate(row.values())})
        for creator in build_comparisons(COLS, LinkConfig()):
            comparison = creator.get_comparison("duckdb")
            for level in comparison.comparison_levels:
                sql = level.sql_condition
                if sql == "ELSE" or con.execute(f"SELECT coalesce(({sql}), false) FROM p").fetchone()[0]:
                    out[comparison.output_column_name] = level.label_for_charts
                    break
    return out


def test_same_date_swap_counts_in_the_name_comparisons():
    levels = _levels(_record("jack", "mccarthy", "19411214", "3178"),
                     _record("mccarthy", "jack", "19411214", "4109"))
    assert levels["full_name"].startswith("full name composites missing, or date of birth agrees")
    # the full-name comparison is neutral, so the names must be compared here: the order-swapped level
    assert levels["given_name"] == SWAP_LABEL
    assert levels["surname"] == SWAP_LABEL


@pytest.mark.parametrize(("right_dob", "full_level"), [
    ("19411215", FULL_NEAR_DOB_LABEL), ("19411241", FULL_NEAR_DOB_LABEL),  # one digit off; two digits swapped
    ("19780506", FULL_PC_LABEL)])                                           # another date, the same postcode
def test_swap_with_another_date_stays_with_the_full_name_comparison(right_dob, full_level):
    # counted once, by the full-name composites (priced given the postcode there: relatives at one address)
    levels = _levels(_record("jack", "mccarthy", "19411214", "3178"),
                     _record("mccarthy", "jack", right_dob, "3178"))
    assert levels["full_name"] == full_level
    for field in ("given_name", "surname"):
        assert levels[field] == f"{field} missing, or compared by the full-name composites"


def test_same_order_with_a_near_date_counts_once_in_the_full_name():
    levels = _levels(_record("jack", "mccarthy", "19411214", "3178"),
                     _record("jack", "mccarthy", "19411215", "4109"))
    assert levels["full_name"] == FULL_NEAR_DOB_LABEL
    for field in ("given_name", "surname"):  # neutral: the full-name comparison counts this agreement
        assert levels[field] == f"{field} missing, or compared by the full-name composites"


def test_same_person_same_date_agrees_per_name_and_full_name_stays_neutral():
    rec = _record("jack", "mccarthy", "19411214", "3178")
    levels = _levels(rec, dict(rec))
    assert levels["given_name"] == "Exact match on given_name__exact"
    assert levels["surname"] == "Exact match on surname__exact"
    assert levels["full_name"].startswith("full name composites missing")


def test_no_name_comparison_reads_the_date_column_the_date_em_session_blocks_on():
    # Splink leaves out of an EM session every comparison that reads a column of its blocking rule: a date
    # condition in the name comparisons would leave their m untrained (the first attempt at this fix did)
    for creator in build_comparisons(COLS, LinkConfig()):
        comparison = creator.get_comparison("duckdb")
        if comparison.output_column_name in ("given_name", "surname"):
            used = {c.input_name for c in comparison._input_columns_used_by_case_statement}
            assert not any(c.startswith("dob__") for c in used), used
