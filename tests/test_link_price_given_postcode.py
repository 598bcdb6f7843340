"""Levels that fire only at one postcode ("same full name, same postcode", "similar name, same postcode") are
priced given the postcode, so together with the postcode comparison they count the address once, and their u is
counted among pairs at one postcode that are unlikely to be one person (not among random pairs, which at one
postcode are mostly duplicates where the data hold many records per person)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from splink import Linker

from linkage.link.model import (
    FULL_NEAR_PC_LABEL,
    FULL_PC_LABEL,
    full_name_postcode_given_postcode,
    near_postcode_params,
    u_given_postcode_from_unlikely_pairs,
)
from tests.toy_linker import linker_of, toy_linker

COLS = {"given_name__exact", "surname__exact", "dob__exact", "dob__year", "dob__md", "postcode__exact",
        "postcode__del1", "full_name__near_dob", "full_name__exact_pc", "full_name__near_pc"}


def _levels(linker: Linker) -> dict[str, dict[str, object]]:
    return {c.output_column_name: {lvl.label_for_charts: lvl for lvl in c.comparison_levels}
            for c in linker._settings_obj.comparisons}


def _bits(lvl: object) -> float:
    return math.log2(lvl.m_probability / lvl.u_probability)  # type: ignore[attr-defined]


def test_same_full_name_same_postcode_counts_the_address_once_and_the_typo_level_keeps_its_price():
    linker = toy_linker(COLS)
    comps = _levels(linker)
    pc = comps["postcode"]["Exact match on postcode__exact"]
    full, near = comps["full_name"][FULL_PC_LABEL], comps["full_name"][FULL_NEAR_PC_LABEL]
    assert not full_name_postcode_given_postcode(linker)  # nothing trained yet: nothing to divide by
    pc.m_probability, pc.u_probability = 0.72, 2.2e-4
    # sampled u: P(same full name AND same postcode) among random pairs (1% of pairs at one postcode)
    full.m_probability, full.u_probability = 0.6, 2.2e-6
    joint = math.log2(0.6 / 2.2e-6)  # the name and the address together, counted once
    assert _bits(full) + _bits(pc) == pytest.approx(joint + math.log2(0.72 / 2.2e-4))  # address counted twice
    # the names' and the date's exact levels (date-salted: their m over m(exact date) is P(same name | match))
    for field, m in (("given_name", 0.72), ("surname", 0.75), ("dob", 0.96)):
        comps[field][f"Exact match on {field}__exact"].m_probability = m
    assert near_postcode_params(linker)
    assert full_name_postcode_given_postcode(linker)
    assert full.u_probability == pytest.approx(0.01)  # share with the same full name among non-matches there
    # EM's m counted the level's pairs among date-differing matches (a date more than one error off, which the
    # date comparison prices): m is now the share of matches with both names the same
    assert full.m_probability == pytest.approx(0.72 / 0.96 * 0.75 / 0.96)
    joint = math.log2(full.m_probability / 2.2e-6)
    assert _bits(full) + _bits(pc) == pytest.approx(joint + math.log2(0.72))  # the address once: pc adds its m
    # a postcode typo is not a shared address: that level keeps the unconditional price
    # (unconditional u); its m is the same P(same full name | match), not EM's m of the exact-postcode level
    assert (near.m_probability, near.u_probability) == pytest.approx((0.72 / 0.96 * 0.75 / 0.96, 2.2e-6))


def _household_data(wrong_date_copies: int = 0) -> pd.DataFrame:
    """Postcode p: a person recorded six times (one date), a parent and child of one full name, three others;
    postcode q: four strangers, and ``wrong_date_copies`` records of the first with a wholly different date
    (same person, same full name). Every date differs from the others in year and in month-day."""
    people = [("p", "dup", "1990", "0101")] * 6 + [("p", "jr", "1960", "0202"), ("p", "jr", "1991", "0303"),
                                                    ("p", "x1", "1970", "0404"), ("p", "x2", "1980", "0505"),
                                                    ("p", "x3", "2000", "0606")]
    people += [("q", f"y{i}", str(1950 + i), f"07{i:02d}") for i in range(4)]
    people += [("q", "y0", "1999", "0909")] * wrong_date_copies
    rows = []
    for i, (postcode, name, year, md) in enumerate(people):
        rows.append({"identity_id": f"r{i:02d}", "record_id": f"r{i:02d}", "source": "x",
                     "given_name__exact": f"{name}{year}{md}", "surname__exact": f"s{name}{year}{md}",
                     "dob__exact": year + md, "dob__year": year, "dob__md": md, "postcode__exact": postcode,
                     "postcode__del1": [postcode], "full_name__near_dob": [f"{name}{year}{md}"],
                     "full_name__exact_pc": f"{name}{postcode}", "full_name__near_pc": [f"{name}{postcode}"]})
    return pd.DataFrame(rows)


def _train_date(linker: Linker, wrong_date_share: float) -> None:
    dob = _levels(linker)["dob"]
    dob["Exact match on dob__exact"].m_probability = 0.9
    dob["All other comparisons"].m_probability = 0.9 * wrong_date_share


def test_u_given_the_postcode_is_counted_among_unlikely_pairs_not_duplicates():
    linker = linker_of(_household_data(), COLS)
    full = _levels(linker)["full_name"][FULL_PC_LABEL]
    full.u_probability = 0.5  # e.g. a quotient inflated by the duplicates
    assert u_given_postcode_from_unlikely_pairs(linker, min_pairs=1) == {}  # the date's m not trained yet
    _train_date(linker, 1e-12)  # no wrong dates among matches
    assert u_given_postcode_from_unlikely_pairs(linker) == {}  # too few pairs for a u: left as it was
    assert full.u_probability == 0.5
    done = u_given_postcode_from_unlikely_pairs(linker, min_pairs=1)
    # pairs at one postcode whose dates differ in year and month-day: postcode p has 6 duplicates + 5 others
    # (duplicates pair with each of the 5: 30; the 5 among themselves: 10), q has 6; the duplicates' 15 pairs
    # among themselves are left out. Same full name: the parent and child only.
    assert done == {f"full_name: {FULL_PC_LABEL}": pytest.approx(1 / 46)}
    assert full.u_probability == pytest.approx(1 / 46)


def test_matches_with_a_wholly_wrong_date_are_taken_out_of_the_u():
    # Two records of stranger y0 at q carry another date: 2 x 4 more pairs whose dates differ wholly, 2 of them
    # (y0 and each copy) the same person with the same full name; the copies with each other share the date.
    linker = linker_of(_household_data(wrong_date_copies=2), COLS)
    full = _levels(linker)["full_name"][FULL_PC_LABEL]
    _train_date(linker, 1e-12)  # no wrong dates among matches
    assert u_given_postcode_from_unlikely_pairs(linker, min_pairs=1) == {
        f"full_name: {FULL_PC_LABEL}": pytest.approx(3 / 54)}  # the matches counted as households
    # Same-date pairs at one postcode with the same full name: the 15 duplicates' pairs and the copies' 1. With
    # m(wholly wrong date) / m(exact date) = 2/16 (2 of the 16 + 2 pairs of the same person agree, in the
    # comparison, only on the full name and address), 2 expected matches leave the parent and child.
    _train_date(linker, 2 / 16)
    assert full.u_probability == pytest.approx(3 / 54)
    u_given_postcode_from_unlikely_pairs(linker, min_pairs=1)
    assert full.u_probability == pytest.approx(1 / 52)


def test_without_year_and_month_day_tokens_the_u_is_left_alone():
    df = _household_data().drop(columns=["dob__md"])
    df["dob__md"] = None  # the column is absent from the extracts: never compared
    linker = linker_of(df.drop(columns=["dob__md"]), COLS - {"dob__md"})
    assert u_given_postcode_from_unlikely_pairs(linker, min_pairs=1) == {}


def test_a_u_from_unlikely_pairs_is_kept_and_m_still_set_when_random_sampling_missed_the_level():
    # At 50,000 people the 1M-pair random sample can miss "same full name, same postcode": its u then comes
    # only from the unlikely pairs, and m must still become P(same full name | match), not stay EM's
    linker = toy_linker(COLS)
    comps = _levels(linker)
    comps["postcode"]["Exact match on postcode__exact"].u_probability = 2.2e-4
    for field, m in (("given_name", 0.72), ("surname", 0.75), ("dob", 0.96)):
        comps[field][f"Exact match on {field}__exact"].m_probability = m
    full = comps["full_name"][FULL_PC_LABEL]
    assert not full._u_is_trained
    assert not full_name_postcode_given_postcode(linker)  # no u at all: nothing to price
    full.m_probability, full.u_probability = 0.007, 3e-4  # EM's m; u from the unlikely pairs
    assert full_name_postcode_given_postcode(linker, {f"full_name: {FULL_PC_LABEL}": 3e-4})
    assert (full.m_probability, full.u_probability) == pytest.approx((0.72 / 0.96 * 0.75 / 0.96, 3e-4))


@pytest.mark.spark
def test_the_u_given_the_postcode_is_the_same_on_spark():
    # The count runs as SQL in the linker's engine: on Spark the identifiers are back-quoted, and a DuckDB-only
    # reading of them left the levels with the quotient (a different model than DuckDB's on the same data).
    pytest.importorskip("pyspark")
    import logging

    from splink import SparkAPI

    from linkage.link.backends.spark import spark_session
    from linkage.link.config import LinkConfig, SparkBackendSettings
    from linkage.link.model import build_settings

    df = _household_data(wrong_date_copies=2)
    duck = linker_of(df, COLS)
    _train_date(duck, 2 / 16)
    expected = u_given_postcode_from_unlikely_pairs(duck, min_pairs=1)
    assert expected  # the DuckDB count ran
    with spark_session(SparkBackendSettings(master="local[1]", release_jvm=False, driver_memory="1g")) as spark:
        frame = spark.createDataFrame(df)
        linker = Linker([SparkAPI(spark_session=spark).register(frame)],
                        build_settings(COLS, LinkConfig(), "dedupe_only", ""), log_level=logging.ERROR)
        _train_date(linker, 2 / 16)
        got = u_given_postcode_from_unlikely_pairs(linker, min_pairs=1)
    assert got == pytest.approx(expected)
