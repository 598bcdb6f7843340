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


def test_an_em_session_splink_refuses_is_skipped_not_fatal():
    from types import SimpleNamespace

    import pytest

    from linkage.link.model import _em_session

    def refuse(*_args, **_kwargs):
        raise ValueError("m_probability value 0.0 is below the minimum allowed value of 1e-300.")

    def broken(*_args, **_kwargs):
        raise ValueError("something else")

    for fn, ok in ((refuse, False), (lambda *a, **k: None, True)):
        linker = SimpleNamespace(training=SimpleNamespace(estimate_parameters_using_expectation_maximisation=fn))
        assert _em_session(linker, ["dob__exact"], {}) is ok  # type: ignore[arg-type]
    linker = SimpleNamespace(training=SimpleNamespace(estimate_parameters_using_expectation_maximisation=broken))
    with pytest.raises(ValueError, match="something else"):
        _em_session(linker, ["dob__exact"], {})  # type: ignore[arg-type]
