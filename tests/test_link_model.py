"""The model's safety nets: untrained levels get a neutral m, no level's m falls below the floor."""

from __future__ import annotations

import logging

import pandas as pd
from splink import DuckDBAPI, Linker

from linkage.link.config import LinkConfig
from linkage.link.model import fix_untrained_levels, usable_rules
from tests.toy_linker import linker_of

COLS = {"dob__exact", "dob__swap", "dob__ym", "dob__year", "sex__exact"}


def _linker() -> Linker:
    df = pd.DataFrame({"identity_id": ["a-0", "b-0"], "record_id": ["a", "b"], "source": ["x", "x"],
                       "dob__exact": ["1", "2"], "dob__swap": [None, None], "dob__ym": ["1", "2"],
                       "dob__year": ["1", "1"], "sex__exact": ["m", "f"]})
    return linker_of(df, COLS)


def _levels(linker: Linker, name: str) -> dict[str, object]:
    comparison = next(c for c in linker._settings_obj.comparisons if c.output_column_name == name)
    return {lvl.label_for_charts: lvl for lvl in comparison.comparison_levels if not lvl.is_null_level}


def test_unobserved_level_gets_weight_zero_not_splinks_default():
    linker = _linker()
    dob = _levels(linker, "dob")
    for label, level in dob.items():
        level.u_probability = 0.2 if label != "day and month swapped" else 3e-5
        if label != "day and month swapped":  # EM "never saw" the swap level
            level.m_probability = 0.25
    for level in _levels(linker, "sex").values():
        level.m_probability = level.u_probability = 0.5
    fixed = fix_untrained_levels(linker, LinkConfig())
    assert fixed == ["dob: day and month swapped"]
    swap = dob["day and month swapped"]
    assert swap.m_probability == swap.u_probability == 3e-5  # log2(m/u) = 0 bits of evidence


def test_fixed_policy_and_m_floor():
    linker = _linker()
    cfg = LinkConfig()
    cfg.training.unobserved_level_m = "fixed"
    sex = _levels(linker, "sex")
    exact, other = sex.values()
    exact.u_probability, other.u_probability = 0.5, 0.5
    exact.m_probability, other.m_probability = 1.0, 1e-9  # EM saw no disagreeing match: a 29-bit veto
    for level in _levels(linker, "dob").values():
        level.u_probability = 0.1
    fixed = fix_untrained_levels(linker, cfg)
    assert len(fixed) == len(_levels(linker, "dob"))  # none of the dob levels had an m
    assert all(level.m_probability == cfg.training.unobserved_fixed_m for level in _levels(linker, "dob").values())
    assert other.m_probability == cfg.training.m_floor


def test_rules_on_absent_columns_are_skipped():
    rules = [["dob__exact"], ["upn__exact"], "l.dob__swap = r.dob__exact AND l.surname__exact = r.surname__exact"]
    assert usable_rules(rules, COLS) == [["dob__exact"]]


def _crowded_names() -> pd.DataFrame:
    """60 identity rows sharing one full name (a common name at a large population's density), each with
    its own date of birth, plus 40 rows with distinct names."""
    n = 100
    return pd.DataFrame({"given_name__exact": ["mohammed"] * 60 + [f"g{i}" for i in range(40)],
                         "surname__exact": ["khan"] * 60 + [f"s{i}" for i in range(40)],
                         "dob__exact": [f"d{i}" for i in range(n)]})


def test_blocking_budget_skips_a_rule_whose_pairs_grow_with_the_square_of_a_common_name():
    import duckdb

    from linkage.link.model import estimate_rule_pairs, plan_blocking

    con = duckdb.connect()
    con.register("ids", _crowded_names())
    cols = {"given_name__exact", "surname__exact", "dob__exact"}
    name_rule, dob_rule = ["given_name__exact", "surname__exact"], ["given_name__exact", "dob__exact"]
    swap_rule = "l.given_name__exact = r.surname__exact AND l.dob__exact = r.dob__exact"
    assert estimate_rule_pairs(con, "ids", name_rule) == 60 * 59 // 2
    assert estimate_rule_pairs(con, "ids", dob_rule) == 0
    assert estimate_rule_pairs(con, "ids", swap_rule) is None  # SQL rules are not counted, always run

    cfg = LinkConfig(blocking_rules=[dob_rule, name_rule, swap_rule], blocking_budget_pairs_per_identity=4,
                     blocking_budget_min_pairs=0)  # no small-file floor: the per-row budget decides
    rules, plan = plan_blocking(con, "ids", cols, cfg)
    assert rules == [dob_rule, swap_rule]  # 1,770 pairs > 4 x 100 rows
    assert [p["used"] for p in plan] == [True, False, True]
    assert plan[1]["estimated_pairs"] == 1770

    roomy = cfg.model_copy(update={"blocking_budget_pairs_per_identity": 20})
    assert plan_blocking(con, "ids", cols, roomy)[0] == [dob_rule, name_rule, swap_rule]
    unlimited = cfg.model_copy(update={"blocking_budget_pairs_per_identity": None})
    assert plan_blocking(con, "ids", cols, unlimited)[0] == [dob_rule, name_rule, swap_rule]


def test_token_list_rule_is_exploded_counted_per_shared_token_and_finds_a_one_digit_dob_typo():
    import duckdb
    from splink import SettingsCreator

    from linkage.link.model import estimate_rule_pairs, to_splink_rule
    from linkage.normalise import deletion_neighbourhood

    dobs = ["19870412", "19870413", "19870412", "20011231"]  # a, b one digit apart; c equal to a; d far
    df = pd.DataFrame({"identity_id": ["a-0", "b-0", "c-0", "d-0"], "record_id": ["a", "b", "c", "d"],
                       "source": ["x"] * 4, "dob__del1": [deletion_neighbourhood(d) for d in dobs],
                       "surname__initial": ["k", "k", "k", "k"]})
    rule = ["dob__del1", "surname__initial"]
    con = duckdb.connect()
    con.register("ids", df)
    shared = {(i, j): len(set(df.dob__del1[i]) & set(df.dob__del1[j])) for i in range(4) for j in range(i + 1, 4)}
    # The join's real cost: a pair sharing k tokens is counted k times.
    assert estimate_rule_pairs(con, "ids", rule) == sum(shared.values())
    assert shared[(0, 1)] >= 1 and shared[(0, 3)] == 0

    splink_rule = to_splink_rule(rule, " AND l.record_id <> r.record_id")
    assert splink_rule.arrays_to_explode == ["dob__del1"]
    import splink.comparison_library as cl

    settings = SettingsCreator(link_type="dedupe_only", unique_id_column_name="identity_id",
                               comparisons=[cl.ExactMatch("surname__initial")],
                               blocking_rules_to_generate_predictions=[splink_rule])
    linker = Linker([DuckDBAPI().register(df)], settings, log_level=logging.ERROR)
    pairs = linker.inference.predict().as_pandas_dataframe()
    found = {tuple(sorted(p)) for p in zip(pairs.identity_id_l, pairs.identity_id_r, strict=True)}
    assert found == {("a-0", "b-0"), ("a-0", "c-0"), ("b-0", "c-0")}  # once each; d shares no digit token


def test_a_rule_on_two_token_lists_is_counted_as_every_combination_of_their_tokens():
    """Splink's exploding join pairs every token of one list with every token of the other; the budget's
    estimate must count the same rows (unnesting both lists in one SELECT zips them and undercounts)."""
    import itertools

    import duckdb

    from linkage.link.model import estimate_rule_pairs
    from linkage.normalise import deletion_neighbourhood

    given = ["john", "jon", "john", "jhn"]
    surnames = ["smith", "smyth", "smith", "smith"]
    df = pd.DataFrame({"given_name__del1": [deletion_neighbourhood(g) for g in given],
                       "surname__del1": [deletion_neighbourhood(s) for s in surnames]})
    con = duckdb.connect()
    con.register("ids", df)
    # Rows per key value after exploding both lists: n(n-1)/2 per (given token, surname token) combination.
    combos: dict[tuple[str, str], int] = {}
    for g_tokens, s_tokens in zip(df.given_name__del1, df.surname__del1, strict=True):
        for key in itertools.product(set(g_tokens), set(s_tokens)):
            combos[key] = combos.get(key, 0) + 1
    expected = sum(n * (n - 1) // 2 for n in combos.values())
    assert expected > 0
    assert estimate_rule_pairs(con, "ids", ["given_name__del1", "surname__del1"]) == expected


def test_every_token_list_column_the_encoder_can_emit_is_exploded_in_blocking():
    """A list column not recognised would compile to whole-list equality (l.x = r.x) without any error."""
    import typing

    from linkage.config import DobVariant, NameVariant, PartnerConfig, PostcodeVariant
    from linkage.encode.identifiers import IdentifierEncoder
    from linkage.link.model import is_token_list

    cfg = PartnerConfig.model_validate({
        "project_id": "test-project", "source": "police", "local_id": "id",
        "identifiers": {"given_name": {"column": "g"}, "surname": {"column": "s"},
                        "date_of_birth": {"column": "d", "formats": ["%Y-%m-%d"]}, "postcode": {"column": "p"},
                        "sex": {"column": "x"}},
        "encodings": {"name_variants": list(typing.get_args(NameVariant)),
                      "dob_variants": list(typing.get_args(DobVariant)),
                      "postcode_variants": list(typing.get_args(PostcodeVariant)),
                      "name_dob_tolerant_tokens": True, "name_postcode_tokens": True,
                      "phonetic_postcode_tokens": True, "full_name_tokens": True}})
    columns = IdentifierEncoder(cfg, b"k" * 32).columns
    lists = {c for c, spec in columns.items() if spec["type"] == "token_list"}
    assert {"given_name__near_dob", "name__parts", "dob__del1", "postcode__del1"} <= lists
    assert {c for c in columns if is_token_list(c)} == lists
