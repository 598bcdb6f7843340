"""The unsalted full name (``name__full``) as the full-name comparison's lowest level: where it sits, its term
frequencies counted over people (not records), and its m counted among pairs with the same date and postcode."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from splink import Linker

from linkage.link.model import (
    FULL_NEAR_PC_LABEL,
    FULL_PC_LABEL,
    FULL_UNSALTED_LABEL,
    full_name_person_tf,
    full_name_unsalted_m,
)
from tests.toy_linker import linker_of

COLS = {"given_name__exact", "surname__exact", "dob__exact", "postcode__exact", "sex__exact",
        "full_name__near_dob", "full_name__exact_pc", "full_name__near_pc", "name__full"}
LISTS = ("near_dob", "near_pc")


def _linker(rows: list[dict[str, object]], cols: set[str] = COLS) -> Linker:
    df = pd.DataFrame(rows)
    own = df["record_id"] + "-0"
    df["identity_id"] = df["identity_id"].fillna(own) if "identity_id" in df else own
    df["source"] = "x"
    for col in sorted(cols):
        if col not in df:
            df[col] = [[f"{col}{i}"] if col.endswith(LISTS) else f"{col}{i}" for i in range(len(df))]
    return linker_of(df, cols)


def _levels(linker: Linker, comparison: str) -> dict[str, object]:
    comp = next(c for c in linker._settings_obj.comparisons if c.output_column_name == comparison)
    return {lvl.label_for_charts: lvl for lvl in comp.comparison_levels}


def test_unsalted_full_name_is_the_full_name_comparisons_last_level_counted_once():
    linker = _linker([{"record_id": "a"}, {"record_id": "b"}])
    labels = list(_levels(linker, "full_name"))
    assert labels.index(FULL_PC_LABEL) < labels.index(FULL_NEAR_PC_LABEL) < labels.index(FULL_UNSALTED_LABEL)
    assert labels.index(FULL_UNSALTED_LABEL) == len(labels) - 2  # before "all other" only
    assert _levels(linker, "full_name")[FULL_UNSALTED_LABEL]._has_tf_adjustments  # type: ignore[attr-defined]
    for field in ("given_name", "surname"):  # not a level of the per-name comparisons as well
        assert not any("full name" in label and not lvl.is_null_level  # type: ignore[attr-defined]
                       for label, lvl in _levels(linker, field).items())
    # Without full-name composites (per-name hardened profile) it stays a level of each name comparison.
    per_name = _linker([{"record_id": "a"}, {"record_id": "b"}],
                       {"given_name__exact", "surname__exact", "dob__exact", "name__full"})
    assert "same full name" in _levels(per_name, "surname")
    assert not any(c.output_column_name == "full_name" for c in per_name._settings_obj.comparisons)


def _people() -> list[dict[str, object]]:
    """"rare": one person with four records (one undated); "shared": three people, one record each; "twice": two
    people; "undated": two records, neither dated (counted as two people); twelve other people of other names."""
    rows: list[dict[str, object]] = []
    for i, dob in enumerate(["d1", "d1", "d1", None]):
        rows.append({"record_id": f"rare{i}", "name__full": "rare", "dob__exact": dob})
    for i in range(3):
        rows.append({"record_id": f"shared{i}", "name__full": "shared", "dob__exact": f"s{i}"})
    rows += [{"record_id": f"twice{i}", "name__full": "twice", "dob__exact": f"t{i}"} for i in range(2)]
    rows += [{"record_id": f"undated{i}", "name__full": "undated", "dob__exact": None} for i in range(2)]
    rows += [{"record_id": f"o{i}", "name__full": f"other{i}", "dob__exact": f"o{i}"} for i in range(12)]
    return rows


PEOPLE = 1 + 3 + 2 + 2 + 12  # "undated": nothing tells its two records apart, so two people (the cautious side);
#                             the undated "rare" record adds no one to a name with a dated holder


def _registered_tf(linker: Linker) -> dict[str, float]:
    table = linker._intermediate_table_cache["__splink__df_tf_name__full"].as_pandas_dataframe()
    return dict(zip(table["name__full"], table["tf_name__full"], strict=True))


def test_person_counted_term_frequency_prices_one_persons_duplicates_as_rare():
    linker = _linker(_people())
    records = {r["name__full"]: r["tf_name__full"] for r in
               linker.table_management.compute_tf_table("name__full").as_record_list()}
    # Splink's own table counts records: one person's four records make the name look commoner than three
    # people's one each.
    assert records["rare"] > records["shared"]
    out = full_name_person_tf(linker, leave_one_out=False)
    assert out is not None and out["names"] == 16
    tf = _registered_tf(linker)
    assert (tf["rare"], tf["shared"], tf["twice"], tf["undated"]) == pytest.approx(
        (1 / PEOPLE, 3 / PEOPLE, 2 / PEOPLE, 2 / PEOPLE))


def test_term_frequency_counts_the_other_holders_of_a_name():
    """The chance that a different person holds the name: the other holders (people - 1); for a name of one
    person, Good-Turing's estimate (2 x names of two people / names of one person), not zero."""
    linker = _linker(_people())
    level = _levels(linker, "full_name")[FULL_UNSALTED_LABEL]
    assert full_name_person_tf(linker) is not None
    tf = _registered_tf(linker)
    singleton = 2 * 2 / 13  # two names of two people ("twice", "undated"), thirteen of one
    assert (tf["rare"], tf["shared"], tf["twice"], tf["undated"]) == pytest.approx(
        (singleton / PEOPLE, 2 / PEOPLE, 1 / PEOPLE, 1 / PEOPLE))
    shares = {"rare": 1, "shared": 3, "twice": 2, "undated": 2, **{f"other{i}": 1 for i in range(12)}}
    assert level.u_probability == pytest.approx(  # type: ignore[attr-defined]
        sum(n / PEOPLE * tf[name] for name, n in shares.items()))
    # Scoring reads the registered table: the pair of the rare name's records weighs log2(m / tf).
    level.m_probability = 0.8  # type: ignore[attr-defined]
    for comp in linker._settings_obj.comparisons:
        for lvl in comp.comparison_levels:
            if not lvl.is_null_level and not lvl._m_is_trained:
                lvl.m_probability, lvl.u_probability = 0.5, 0.5
    pairs = linker.inference.predict().as_pandas_dataframe()
    pair = pairs[(pairs.identity_id_l == "rare0-0") & (pairs.identity_id_r == "rare3-0")].iloc[0]
    assert pair["tf_name__full_l"] == pytest.approx(tf["rare"])
    assert pair["mw_full_name"] + pair["mw_tf_adj_full_name"] == pytest.approx(math.log2(0.8 / tf["rare"]))


def _same_date_and_postcode(agree: int, disagree: int) -> list[dict[str, object]]:
    """Pairs of records with one date and postcode: ``agree`` with the same full name, ``disagree`` not; plus
    pairs that must not count: sex recorded differently, and two identity rows of one record."""
    rows: list[dict[str, object]] = []
    for i in range(agree + disagree):
        second = "n" if i < agree else "typo"
        for side, name in (("a", "n"), ("b", second)):
            rows.append({"record_id": f"{i}{side}", "name__full": f"{name}{i}", "dob__exact": f"d{i}",
                         "postcode__exact": f"p{i}", "sex__exact": "f"})
    for i in range(5):  # twins of the other sex: same date and address, other name
        rows += [{"record_id": f"t{i}{s}", "name__full": f"t{i}{s}", "dob__exact": f"td{i}",
                  "postcode__exact": f"tp{i}", "sex__exact": s} for s in ("f", "m")]
    for i in range(5):  # one record's two identity rows (an alias name)
        rows += [{"record_id": f"r{i}", "identity_id": f"r{i}-{k}", "name__full": f"alias{i}{k}",
                  "dob__exact": f"rd{i}", "postcode__exact": f"rp{i}", "sex__exact": "f"} for k in range(2)]
    return rows


@pytest.mark.parametrize(("agree", "disagree"), [(9, 3), (6, 6)])
def test_unsalted_m_is_counted_among_pairs_with_the_same_date_and_postcode(agree: int, disagree: int):
    linker = _linker(_same_date_and_postcode(agree, disagree))
    level = _levels(linker, "full_name")[FULL_UNSALTED_LABEL]
    level.m_probability = 1e-9  # type: ignore[attr-defined]  # an EM session's near-zero m is replaced
    # ...but only once u is priced: an m alone would leave Splink's placeholder u (1e-6, ~+18 bits) in place
    assert full_name_unsalted_m(linker, min_pairs=5) is None
    assert level.m_probability == 1e-9  # type: ignore[attr-defined]
    level.u_probability = 1e-4  # type: ignore[attr-defined]  # as full_name_person_tf sets it
    out = full_name_unsalted_m(linker, min_pairs=5)
    assert out == {"pairs": agree + disagree, "agree": agree, "m": pytest.approx(agree / (agree + disagree))}
    assert level.m_probability == pytest.approx(agree / (agree + disagree))  # type: ignore[attr-defined]


def test_unsalted_m_falls_back_to_the_exact_levels_with_too_few_pairs():
    linker = _linker(_same_date_and_postcode(2, 1))
    _levels(linker, "full_name")[FULL_UNSALTED_LABEL].u_probability = 1e-4  # type: ignore[attr-defined]
    assert full_name_unsalted_m(linker, min_pairs=5) is None  # nothing trained to fall back on
    for field, m in (("given_name", 0.72), ("surname", 0.63), ("dob", 0.9)):
        _levels(linker, field)[f"Exact match on {field}__exact"].m_probability = m  # type: ignore[attr-defined]
    out = full_name_unsalted_m(linker, min_pairs=5)
    assert out is not None and out["m"] == pytest.approx(0.8 * 0.7)
