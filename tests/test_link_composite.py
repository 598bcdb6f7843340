"""Composite (hardened) name levels: built only for extracts that carry them, trained by their own EM
session without letting that session's household-heavy postcode block retrain anything else."""

from __future__ import annotations

import logging

import pandas as pd
from splink import DuckDBAPI, Linker

from linkage.link.config import LinkConfig
from linkage.link.model import (
    COMPOSITE_LEVEL_LABELS,
    _restore_m,
    _snapshot_m,
    build_settings,
    composite_em_rules,
)

PLAIN = {"given_name__exact", "surname__exact", "dob__exact", "dob__year", "postcode__exact"}
COMPOSITE = PLAIN | {"given_name__near_dob", "surname__near_dob", "given_name__exact_pc", "surname__exact_pc",
                     "name__full", "given_name__phonetic_pc", "surname__phonetic_pc"}


def _linker(cols: set[str]) -> Linker:
    df = pd.DataFrame({"identity_id": ["a-0", "b-0"], "record_id": ["a", "b"], "source": ["x", "x"]})
    for col in sorted(cols):
        df[col] = [["1"], ["2"]] if col.endswith("near_dob") else ["1", "2"]
    return Linker([DuckDBAPI().register(df)], build_settings(cols, LinkConfig(), "dedupe_only", ""),
                  log_level=logging.ERROR)


def _labels(cols: set[str], field: str) -> list[str]:
    comparison = next(c for c in _linker(cols)._settings_obj.comparisons if c.output_column_name == field)
    return [lvl.label_for_charts for lvl in comparison.comparison_levels]


def test_composite_levels_and_session_only_with_composite_columns():
    assert not set(COMPOSITE_LEVEL_LABELS) & set(_labels(PLAIN, "surname"))
    labels = _labels(COMPOSITE, "surname")
    assert set(COMPOSITE_LEVEL_LABELS) <= set(labels)
    # after the whole-date exact level, before the fuzzy ones
    assert labels.index("same name, date of birth one error apart") == 2
    assert labels[0] == "surname missing"  # null only when the salted name and every composite are missing
    assert composite_em_rules(PLAIN) == []
    assert composite_em_rules(COMPOSITE) == [["given_name__exact_pc", "surname__exact_pc"],
                                             ["postcode__exact", "dob__year"]]


def test_composite_session_keeps_only_the_composite_levels_m():
    linker = _linker(COMPOSITE)
    levels = [(c.output_column_name, lvl) for c in linker._settings_obj.comparisons
              for lvl in c.comparison_levels if not lvl.is_null_level]
    for _, lvl in levels:
        lvl.m_probability = 0.3
    kept = _snapshot_m(linker)
    for _, lvl in levels:  # what an EM session on a postcode block does: new m for every level it trains
        lvl.m_probability = 0.6
        lvl._add_trained_m_probability(0.6, "em on postcode")
    _restore_m(linker, kept, keep_new=COMPOSITE_LEVEL_LABELS)
    for name, lvl in levels:
        expected = 0.6 if lvl.label_for_charts in COMPOSITE_LEVEL_LABELS else 0.3
        assert lvl.m_probability == expected, (name, lvl.label_for_charts)
        if expected == 0.3:
            assert all(r["description"] != "em on postcode" for r in lvl._trained_m_probabilities)


def test_a_refused_em_session_restores_the_model_and_retries_with_fewer_iterations():
    import pytest

    from linkage.link.model import _em_session

    calls: list[int] = []

    def splink_like(fail_above: int):
        # What Splink does: drop the comparisons the session blocks on from the linker's own settings, then
        # fail on an m that underflowed (more iterations, smaller m), leaving them dropped.
        def run(*_args, **_kwargs):
            settings = linker._settings_obj
            calls.append(settings.training_settings.max_iterations)
            settings.core_model_settings.comparisons = [c for c in settings.comparisons
                                                        if c.output_column_name != "dob"]
            if settings.training_settings.max_iterations > fail_above:
                raise ValueError("m_probability value 9e-323 is below the minimum allowed value of 1e-300.")
        return run

    for fail_above, ok, tries in ((10, True, 2), (0, False, 3)):
        linker = _linker(COMPOSITE)
        before = linker._settings_obj.training_settings.max_iterations
        linker.training.estimate_parameters_using_expectation_maximisation = splink_like(fail_above)
        calls.clear()
        assert _em_session(linker, ["dob__exact"], {}) is ok
        assert len(calls) == tries and calls[0] == before and calls[1] == 10
        assert linker._settings_obj.training_settings.max_iterations == before
        names = [c.output_column_name for c in linker._settings_obj.comparisons]
        # refused: the date-of-birth comparison is back; accepted: Splink's own result stands
        assert ("dob" in names) is (not ok)
    linker = _linker(COMPOSITE)

    def broken(*_args, **_kwargs):
        raise ValueError("something else")

    linker.training.estimate_parameters_using_expectation_maximisation = broken
    with pytest.raises(ValueError, match="something else"):
        _em_session(linker, ["dob__exact"], {})


def test_postcode_filter_levels_get_a_u_and_their_own_session():
    from linkage.link.model import POSTCODE_FILTER_RULES, bloom_pc_label, postcode_filter_u

    cols = COMPOSITE | {"given_name__bloom", "surname__bloom", "given_name__pcbloom", "surname__pcbloom"}
    assert composite_em_rules(cols)[-1] == POSTCODE_FILTER_RULES[0]
    assert POSTCODE_FILTER_RULES[0] not in composite_em_rules(COMPOSITE)
    linker = _linker(cols)
    comps = {c.output_column_name: {lvl.label_for_charts: lvl for lvl in c.comparison_levels}
             for c in linker._settings_obj.comparisons}
    comps["postcode"]["Exact match on postcode__exact"].u_probability = 0.001
    comps["surname"]["Bloom Dice >= 0.8"].u_probability = 0.02
    assert postcode_filter_u(linker) == [f"surname: {bloom_pc_label(0.8)}"]  # only where both u are known
    assert abs(comps["surname"][bloom_pc_label(0.8)].u_probability - 2e-5) < 1e-12
