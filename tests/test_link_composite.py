"""Composite (hardened) name levels: built only for extracts that carry them, trained by their own EM
session without letting that session's household-heavy postcode block retrain anything else.

Training is tested through ``train`` with Splink's EM replaced by a stand-in that does what an EM session
does to the model (a new m for every level it sees, the model's m the median of the trained values), so
which session's m each level keeps is known exactly."""

from __future__ import annotations

import logging
from statistics import median

import pytest
from splink import Linker

from linkage.link.config import LinkConfig
from linkage.link.model import (
    COMPOSITE_LEVEL_LABELS,
    FULL_NEAR_DOB_LABEL,
    FULL_PC_LABEL,
    composite_em_rules,
    train,
)
from tests.toy_linker import linker_of, toy_linker

PLAIN = {"given_name__exact", "surname__exact", "dob__exact", "dob__year", "postcode__exact"}
COMPOSITE = PLAIN | {"given_name__near_dob", "surname__near_dob", "given_name__exact_pc", "surname__exact_pc",
                     "name__full", "given_name__phonetic_pc", "surname__phonetic_pc"}


def _labels(cols: set[str], field: str) -> list[str]:
    comparison = next(c for c in toy_linker(cols)._settings_obj.comparisons if c.output_column_name == field)
    return [lvl.label_for_charts for lvl in comparison.comparison_levels]


def test_composite_levels_and_session_only_with_composite_columns():
    assert not set(COMPOSITE_LEVEL_LABELS) & set(_labels(PLAIN, "surname"))
    labels = _labels(COMPOSITE, "surname")
    assert set(COMPOSITE_LEVEL_LABELS) - {FULL_NEAR_DOB_LABEL, FULL_PC_LABEL} <= set(labels)
    # after the whole-date exact level, before the fuzzy ones
    assert labels.index("same name, date of birth one error apart") == 2
    assert labels[0] == "surname missing"  # null only when the salted name and every composite are missing
    assert composite_em_rules(PLAIN) == []
    assert composite_em_rules(COMPOSITE) == [["given_name__exact_pc", "surname__exact_pc"],
                                             ["postcode__exact", "dob__year"]]


def test_full_name_composites_are_one_comparison_not_two():
    # composite_name: full -- the full-name composites agree once, in their own comparison, never in both the
    # given-name and the surname comparison (that counted one agreement twice)
    cols = PLAIN | {"full_name__near_dob", "full_name__exact_pc", "dob__del1"}
    for field in ("given_name", "surname"):
        labels = _labels(cols, field)
        assert not {FULL_NEAR_DOB_LABEL, FULL_PC_LABEL} & set(labels)
        # ...and where they agree but the date-salted name does not, the name comparison is neutral (its "all
        # other" level would otherwise count the same pair against the names)
        assert labels[0] == f"{field} missing, or compared by the full-name composites"
    labels = _labels(cols, "full_name")
    assert labels[1:3] == [FULL_NEAR_DOB_LABEL, FULL_PC_LABEL] and len(labels) == 4  # null, two levels, else
    assert ["full_name__exact_pc"] in composite_em_rules(cols)
    assert not {FULL_NEAR_DOB_LABEL, FULL_PC_LABEL} & set(_labels(PLAIN | {"full_name__near_dob"}, "given_name"))


def _trained_m(linker: Linker) -> dict[tuple[str, str], float]:
    """Each non-null level's m as the saved model holds it (Splink's public model JSON)."""
    return {(c["output_column_name"], lvl["label_for_charts"]): lvl["m_probability"]
            for c in linker.misc.save_model_to_json()["comparisons"] for lvl in c["comparison_levels"]
            if not lvl.get("is_null_level") and "m_probability" in lvl}


def _fake_em(linker: Linker, sessions: list[tuple[str, float]], refuse: str | None = None, error: str = "",
             refuse_above: int = -1):
    """Stand-in for Splink's EM: session k gives every level m = 0.2 + 0.05 k, recorded as Splink records a
    trained m, then the model's m becomes the median of each level's trained values (as after real EM).
    A session whose blocking rule mentions ``refuse`` does what Splink does when it refuses a result: it has
    already dropped the comparison it blocks on from the linker's own settings, then raises ``error`` --
    unless the session runs at most ``refuse_above`` iterations (an m that has not yet underflowed)."""
    def em(rule, **_kwargs):
        text = str(rule.create_blocking_rule_dict("duckdb"))
        settings = linker._settings_obj
        if refuse and refuse in text:
            every = list(settings.comparisons)
            settings.core_model_settings.comparisons = [c for c in every if c.output_column_name != refuse]
            if settings.training_settings.max_iterations > refuse_above:
                raise ValueError(error)
            settings.core_model_settings.comparisons = every  # on success Splink puts them back
        value = round(0.2 + 0.05 * len(sessions), 2)
        sessions.append((text, value))
        for c in linker._settings_obj.comparisons:
            for lvl in c._comparison_levels_excluding_null:
                lvl._add_trained_m_probability(value, text)
        linker._populate_m_u_from_trained_values()
    return em


def _train_with_fake_em(cols: set[str], monkeypatch, **fake) -> tuple[Linker, list[tuple[str, float]], dict]:
    linker = toy_linker(cols)
    sessions: list[tuple[str, float]] = []
    # prior and u need real pairs, which two records do not give; they are not what is tested here
    monkeypatch.setattr(linker.training, "estimate_probability_two_random_records_match", lambda *a, **k: None)
    monkeypatch.setattr(linker.training, "estimate_u_using_random_sampling", lambda *a, **k: None)
    monkeypatch.setattr(linker.training, "estimate_parameters_using_expectation_maximisation",
                        _fake_em(linker, sessions, **fake))
    return linker, sessions, train(linker, cols, LinkConfig())


def test_composite_session_keeps_only_the_composite_levels_m(monkeypatch):
    linker, sessions, result = _train_with_fake_em(COMPOSITE, monkeypatch)
    # the last session is the composite-only one, blocked on the postcode (households)
    assert "postcode__exact" in sessions[-1][0] and "dob__year" in sessions[-1][0]
    assert len(result["em_rules"]) == len(sessions)
    with_last = median(v for _, v in sessions)
    without_last = median(v for _, v in sessions[:-1])
    assert with_last != without_last  # else the test could not tell the two apart
    m = _trained_m(linker)
    composite = {key for key in m if key[1] in COMPOSITE_LEVEL_LABELS}
    assert composite and len(composite) < len(m)
    for key, value in m.items():
        assert value == pytest.approx(with_last if key in composite else without_last), key


def test_without_composite_columns_every_session_trains_every_level(monkeypatch):
    linker, sessions, result = _train_with_fake_em(PLAIN, monkeypatch)
    assert len(sessions) == len(result["em_rules"]) >= 2
    assert not any("dob__year" in text for text, _ in sessions)  # no composite-only (postcode) session
    expected = median(v for _, v in sessions)
    assert all(v == pytest.approx(expected) for v in _trained_m(linker).values())


def test_an_em_session_splink_refuses_is_skipped_not_fatal(monkeypatch, caplog):
    refused = "m_probability value 0.0 is below the minimum allowed value of 1e-300."
    with caplog.at_level(logging.WARNING, logger="linkage.link.model"):
        linker, sessions, result = _train_with_fake_em(PLAIN, monkeypatch, refuse="dob", error=refused)
    assert sessions and all("dob" not in text for text, _ in sessions)  # the others trained the model
    assert any("skipped" in r.getMessage() for r in caplog.records)
    assert all(v == pytest.approx(median(v for _, v in sessions)) for v in _trained_m(linker).values())
    with pytest.raises(ValueError, match="something else"):  # any other error still stops the link
        _train_with_fake_em(PLAIN, monkeypatch, refuse="dob", error="something else")


def test_a_refused_em_session_is_retried_with_fewer_iterations_and_keeps_the_model(monkeypatch, caplog):
    refused = "m_probability value 9e-323 is below the minimum allowed value of 1e-300."
    with caplog.at_level(logging.WARNING, logger="linkage.link.model"):
        linker, sessions, _ = _train_with_fake_em(PLAIN, monkeypatch, refuse="dob", error=refused, refuse_above=10)
    # accepted on the retry with 10 iterations, and the comparison Splink had dropped is in the model
    assert any("dob" in text for text, _ in sessions)
    assert any("iterations" in r.getMessage() for r in caplog.records)
    assert linker._settings_obj.training_settings.max_iterations > 10  # the user's setting is put back
    # refused at every size: skipped, and still the date-of-birth comparison is not lost from the model
    linker, sessions, _ = _train_with_fake_em(PLAIN, monkeypatch, refuse="dob", error=refused)
    assert all("dob" not in text for text, _ in sessions)
    assert "dob" in [c.output_column_name for c in linker._settings_obj.comparisons]


def test_postcode_filter_levels_get_a_u_and_their_own_session():
    from linkage.link.model import POSTCODE_FILTER_RULES, bloom_pc_label, postcode_filter_u

    cols = COMPOSITE | {"given_name__bloom", "surname__bloom", "given_name__pcbloom", "surname__pcbloom"}
    assert composite_em_rules(cols)[-1] == POSTCODE_FILTER_RULES[0]
    assert POSTCODE_FILTER_RULES[0] not in composite_em_rules(COMPOSITE)
    linker = toy_linker(cols)
    comps = {c.output_column_name: {lvl.label_for_charts: lvl for lvl in c.comparison_levels}
             for c in linker._settings_obj.comparisons}
    comps["postcode"]["Exact match on postcode__exact"].u_probability = 0.001
    # the date-salted filter level's u is P(similar name AND same date): 0.02 x 1e-4
    comps["surname"]["Bloom Dice >= 0.8"].u_probability = 2e-6
    assert postcode_filter_u(linker) == []  # no u of an exact date yet: nothing to take the date out with
    comps["dob"]["Exact match on dob__exact"].u_probability = 1e-4
    assert postcode_filter_u(linker) == []  # the top level takes the exact name too: its u is needed
    comps["surname"]["Exact match on surname__exact"].u_probability = 3e-7  # same surname and date: 0.003 x 1e-4
    assert postcode_filter_u(linker) == [f"surname: {bloom_pc_label(0.8)}"]  # only where every u is known
    # P(similar or same name) 0.023 x P(same postcode) 0.001, not 2.3e-9 (the date's share left in: ~13 bits
    # too strong), nor 2e-5 (the exact name left out while its m is in: a household's shared surname too strong)
    assert abs(comps["surname"][bloom_pc_label(0.8)].u_probability - 2.3e-5) < 1e-12


def test_postcode_filter_levels_are_priced_given_the_postcode_so_a_household_is_not_a_match():
    # A parent and child: same surname and address, other given name and date. The postcode comparison prices
    # the address; the "similar name, same postcode" level must add only the name's evidence at that address,
    # where co-residents share surnames (u = share among non-matches at one postcode), or the address counts
    # twice and the household scores as a match.
    import math

    from linkage.link.model import bloom_pc_label, postcode_filter_given_postcode

    cols = COMPOSITE | {"given_name__bloom", "surname__bloom", "given_name__pcbloom", "surname__pcbloom"}
    linker = toy_linker(cols)
    comps = {c.output_column_name: {lvl.label_for_charts: lvl for lvl in c.comparison_levels}
             for c in linker._settings_obj.comparisons}
    pc_level = bloom_pc_label(0.8)
    params = {("postcode", "Exact match on postcode__exact"): (0.72, 2.2e-4),
              ("dob", "Exact match on dob__exact"): (0.93, 1.9e-4), ("dob", "All other comparisons"): (0.062, 0.96),
              ("given_name", "Exact match on given_name__exact"): (0.73, 6e-5),
              ("given_name", "Bloom Dice >= 0.8"): (0.017, 4e-6),
              ("given_name", "All other comparisons"): (0.08, 0.9999),
              ("surname", "Exact match on surname__exact"): (0.75, 7e-5),
              ("surname", "Bloom Dice >= 0.8"): (0.016, 3e-6),
              # EM's m (a postcode + year block) and the sampled u: 23% of non-matches at one postcode, 1 in 1M pairs
              ("surname", pc_level): (0.03, 5e-5), ("given_name", pc_level): (0.009, 1e-6)}
    for (comp, label), (m, u) in params.items():
        comps[comp][label].m_probability, comps[comp][label].u_probability = m, u

    def weight(comp: str, label: str) -> float:
        lvl = comps[comp][label]
        return math.log2(lvl.m_probability / lvl.u_probability)

    def probability(levels: list[tuple[str, str]], prior: float = 1e-4) -> float:
        bits = math.log2(prior / (1 - prior)) + sum(weight(c, lab) for c, lab in levels)
        return 1 / (1 + 2 ** -bits)

    household = [("given_name", "All other comparisons"), ("surname", pc_level), ("dob", "All other comparisons"),
                 ("postcode", "Exact match on postcode__exact")]
    misspelt = [("given_name", pc_level), ("surname", pc_level), ("dob", "All other comparisons"),
                ("postcode", "Exact match on postcode__exact")]
    assert probability(household) > 0.4  # the address counted twice: a coin toss for a parent and child

    assert postcode_filter_given_postcode(linker) == [f"given_name: {pc_level}", f"surname: {pc_level}"]
    # m: matches with a similar name (exact or Dice >= 0.8 where the dates agree, over m(exact date))
    assert comps["surname"][pc_level].m_probability == pytest.approx((0.75 + 0.016) / 0.93)
    # u: the share with a similar name among non-matches at the same postcode
    assert comps["surname"][pc_level].u_probability == pytest.approx(5e-5 / 2.2e-4)
    assert probability(household) < 0.01
    # the same person, both names misspelt or one exact, date wrong, same address: still a match
    assert probability(misspelt) > 0.9


def test_a_name_below_the_top_cut_off_at_one_address_counts_and_a_household_still_does_not():
    # The postcode-salted filters have a level at each Dice cut-off, as the date-salted ones do: a one-letter
    # typo often falls below the top cut-off, and with the top level only it fell through to "all other"
    # (about -2.7 bits) where the date is missing or wrong (messy set: the commonest lost true pairs).
    import math

    from linkage.link.model import bloom_pc_label, postcode_filter_given_postcode

    cols = COMPOSITE | {"given_name__bloom", "surname__bloom", "given_name__pcbloom", "surname__pcbloom"}
    labels = _labels(cols, "given_name")
    top, low = bloom_pc_label(0.8), bloom_pc_label(0.6)
    assert labels.index("Bloom Dice >= 0.6") < labels.index(top) < labels.index(low) == len(labels) - 2
    linker = toy_linker(cols)
    comps = {c.output_column_name: {lvl.label_for_charts: lvl for lvl in c.comparison_levels}
             for c in linker._settings_obj.comparisons}
    params = {("postcode", "Exact match on postcode__exact"): (0.72, 2.2e-4),
              ("dob", "Exact match on dob__exact"): (0.9, 1.9e-4),
              ("given_name", "Exact match on given_name__exact"): (0.7, 6e-5),
              ("given_name", "Bloom Dice >= 0.8"): (0.05, 4e-6), ("given_name", "Bloom Dice >= 0.6"): (0.09, 4e-5),
              ("given_name", "All other comparisons"): (0.16, 0.9999),
              # sampled u: a similar given name is rare among non-matches at one postcode (siblings), a name
              # only 0.6-similar a little less rare
              ("given_name", top): (0.2, 2.2e-4 * 0.002), ("given_name", low): (0.01, 2.2e-4 * 0.01)}
    for (comp, label), (m, u) in params.items():
        comps[comp][label].m_probability, comps[comp][label].u_probability = m, u
    assert postcode_filter_given_postcode(linker) == [f"given_name: {top}", f"given_name: {low}"]
    # m: the share of matches in each band, as the date-salted levels of the same cut-off see it (the exact
    # name belongs to the top band only), over m(exact date)
    assert comps["given_name"][top].m_probability == pytest.approx((0.7 + 0.05) / 0.9)
    assert comps["given_name"][low].m_probability == pytest.approx(0.09 / 0.9)
    assert comps["given_name"][low].u_probability == pytest.approx(0.01)

    def bits(label: str) -> float:
        lvl = comps["given_name"][label]
        return math.log2(lvl.m_probability / lvl.u_probability)

    # a misspelt given name at the same address, no date: positive evidence now, not a penalty
    assert bits(low) > 3 > 0 > bits("All other comparisons")
    assert bits(top) > bits(low)


def test_a_postcode_filter_level_is_never_priced_unconditionally_or_at_the_placeholder_u():
    # Fallback paths of small extracts (no u counted among unlikely pairs at one postcode): a level whose
    # date-salted twin EM never trained still has its u taken given the postcode, and a level EM saw but random
    # sampling did not is neutral, not priced at Splink's placeholder u of 1e-6 (~+14 bits).
    from linkage.link.model import bloom_pc_label, postcode_filter_given_postcode

    cols = COMPOSITE | {"given_name__bloom", "surname__bloom", "given_name__pcbloom", "surname__pcbloom"}
    linker = toy_linker(cols)
    comps = {c.output_column_name: {lvl.label_for_charts: lvl for lvl in c.comparison_levels}
             for c in linker._settings_obj.comparisons}
    for (comp, label), (m, u) in {("postcode", "Exact match on postcode__exact"): (0.72, 2.2e-4),
                                  ("dob", "Exact match on dob__exact"): (0.9, 1.9e-4)}.items():
        comps[comp][label].m_probability, comps[comp][label].u_probability = m, u
    low, top = comps["given_name"][bloom_pc_label(0.6)], comps["surname"][bloom_pc_label(0.8)]
    low.m_probability, low.u_probability = 0.05, 2.2e-6  # sampled u; the 0.6 twin has no trained m
    top.m_probability = 0.02                             # EM's m; no u from anywhere
    assert not top._u_is_trained
    postcode_filter_given_postcode(linker)
    assert (low.m_probability, low.u_probability) == pytest.approx((0.05, 0.01))
    assert top.u_probability == top.m_probability


def test_postcode_filter_levels_keep_their_parameters_until_the_postcode_and_date_are_trained():
    from linkage.link.model import postcode_filter_given_postcode

    cols = COMPOSITE | {"surname__bloom", "surname__pcbloom"}
    assert postcode_filter_given_postcode(toy_linker(cols)) == []


def test_a_nickname_level_with_nothing_to_price_it_by_is_neutral_not_at_the_placeholder_u():
    # An EM session blocked on the date can train the level's m from a few pairs (Bob / Rob at one address and
    # date); random sampling and the unlikely pairs of a small extract then give no u, and fix_untrained_levels
    # leaves a level with a trained m alone: Splink's placeholder u of 1e-6 made it about +12 bits.
    from linkage.link.model import NICKNAME_PC_LABEL, nickname_postcode_params

    cols = PLAIN | {"name__full", "full_name__near_dob", "full_name__exact_pc", "given_name__bloom",
                    "given_name__pcbloom", "given_name__alias", "given_name__alias_pc"}
    linker = toy_linker(cols)
    comp = next(c for c in linker._settings_obj.comparisons if c.output_column_name == "given_name")
    level = next(lvl for lvl in comp.comparison_levels if lvl.label_for_charts == NICKNAME_PC_LABEL)
    level.m_probability = 0.003
    assert not level._u_is_trained
    assert nickname_postcode_params(linker) == []   # neither the postcode nor the date is trained: not priced
    assert level.u_probability == level.m_probability


def test_a_nickname_at_one_address_reaches_a_positive_level_without_the_date():
    # Bill / William at the same postcode, one date missing: the date-salted nickname level cannot fire (no salted
    # token), the postcode-salted nickname lists share a token; priced given the postcode, positive evidence.
    import math

    import duckdb
    import pandas as pd

    from linkage.link.model import NICKNAME_LABEL, NICKNAME_PC_LABEL, bloom_pc_label, nickname_postcode_params

    cols = PLAIN | {"name__full", "full_name__near_dob", "full_name__exact_pc", "given_name__bloom",
                    "given_name__pcbloom", "given_name__alias", "given_name__alias_pc"}
    df = pd.DataFrame({"identity_id": ["a-0", "b-0"], "record_id": ["a", "b"], "source": ["x", "x"]})
    for col in sorted(cols):
        df[col] = [["1"], ["2"]] if col.endswith(("near_dob", "alias", "alias_pc")) else ["1", "2"]
    linker = linker_of(df, cols)
    comp = next(c for c in linker._settings_obj.comparisons if c.output_column_name == "given_name")
    labels = [lvl.label_for_charts for lvl in comp.comparison_levels]
    # after the postcode-salted filter levels (a similar name at one address stays there)
    assert labels.index(bloom_pc_label(0.6)) < labels.index(NICKNAME_PC_LABEL) == len(labels) - 2
    gamma = {lvl.label_for_charts: lvl.comparison_vector_value for lvl in comp.comparison_levels}
    # the pair as the encoder gives it: no given-name exact or date-composite token on the dateless side, the
    # full names differ, the given-name filters are not similar (256-bit filters, half set, far apart)
    far_l, far_r = "0" * 128 + "1" * 128, "1" * 128 + "0" * 128
    con = duckdb.connect()
    con.execute(f"""CREATE TABLE pair AS SELECT NULL::VARCHAR AS given_name__exact_l, 'w' AS given_name__exact_r,
        'bill smith' AS name__full_l, 'william smith' AS name__full_r,
        NULL::VARCHAR[] AS full_name__near_dob_l, ['x'] AS full_name__near_dob_r,
        'bs@pc' AS full_name__exact_pc_l, 'ws@pc' AS full_name__exact_pc_r,
        NULL::VARCHAR[] AS given_name__alias_l, ['w', 'pad'] AS given_name__alias_r,
        ['b@pc', 'w@pc'] AS given_name__alias_pc_l, ['w@pc', 'pad@pc'] AS given_name__alias_pc_r,
        NULL::BIT AS given_name__bloom_l, '{far_r}'::BIT AS given_name__bloom_r,
        NULL::INTEGER AS given_name__bloom_pc_l, 128 AS given_name__bloom_pc_r,
        '{far_l}'::BIT AS given_name__pcbloom_l, '{far_r}'::BIT AS given_name__pcbloom_r,
        128 AS given_name__pcbloom_pc_l, 128 AS given_name__pcbloom_pc_r""")
    found = con.execute(f"SELECT {comp._case_statement} FROM pair").fetchall()
    assert found == [(gamma[NICKNAME_PC_LABEL],)]

    comps = {c.output_column_name: {lvl.label_for_charts: lvl for lvl in c.comparison_levels}
             for c in linker._settings_obj.comparisons}
    params = {("postcode", "Exact match on postcode__exact"): (0.72, 2.2e-4),
              ("dob", "Exact match on dob__exact"): (0.9, 1.9e-4),
              ("given_name", NICKNAME_LABEL): (0.018, 1.9e-4 * 0.002),
              ("given_name", NICKNAME_PC_LABEL): (0.3, 2.2e-4 * 0.004)}   # EM's m, sampled u
    for (name, label), (m, u) in params.items():
        comps[name][label].m_probability, comps[name][label].u_probability = m, u
    assert nickname_postcode_params(linker) == [f"given_name: {NICKNAME_PC_LABEL}"]
    level = comps["given_name"][NICKNAME_PC_LABEL]
    assert level.m_probability == pytest.approx(0.018 / 0.9)     # P(nickname | match): the date taken out
    assert level.u_probability == pytest.approx(0.004)           # P(nickname | non-match at one postcode)
    assert math.log2(level.m_probability / level.u_probability) > 2
