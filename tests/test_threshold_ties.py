"""The clusters' threshold choice (``linkage.link.threshold``): near-ties within the model's own noise go to
the middle of the tied range (of two, the higher threshold), and unscored pairs inside clusters are credited up
to the unblocked matches."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

import linkage.link.threshold as threshold_module
from linkage.link.threshold import choose_on_clusters, cluster_sweep


def edges_table(groups: list[tuple[int, float]]) -> duckdb.DuckDBPyConnection:
    """Disjoint record pairs: ``groups`` of (how many pairs, their match probability)."""
    rows, node = [], 0
    for n, p in groups:
        for _ in range(n):
            rows.append((f"r{node}", f"r{node + 1}", p))
            node += 2
    con = duckdb.connect()
    con.register("frame", pd.DataFrame(rows, columns=["node_id_l", "node_id_r", "match_probability"]))
    con.execute("CREATE TABLE _edges AS SELECT * FROM frame")
    return con


def chosen(groups: list[tuple[int, float]], expected_true: float, tie_sds: float,
           monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(threshold_module, "TIE_SDS", tie_sds)
    rows = cluster_sweep(edges_table(groups), [0.3, 0.85], expected_true, unblocked=0.0)
    return float(choose_on_clusters(rows)["threshold"])


def test_a_near_tie_goes_to_the_higher_threshold_and_a_clear_gain_does_not(monkeypatch) -> None:
    """1,000 sure pairs, then 100 pairs between the two thresholds. At probability 0.47, just above half the
    F1 (0.92), linking them raises the expected F1 by 0.0009 with a noise of 0.0044: a tie, and the plain
    argmax (no tie rule) would take the lower threshold on it. At 0.8 the gain (0.03) is real."""
    near_tie = [(1000, 0.99), (100, 0.47)]
    assert chosen(near_tie, 1152.0, 0.0, monkeypatch) == 0.3      # argmax: the lower threshold, by 1e-5
    assert chosen(near_tie, 1152.0, 2.0, monkeypatch) == 0.85     # within two sds of the noise: the higher one
    clear = [(1000, 0.99), (100, 0.8)]
    assert chosen(clear, 1152.0, 2.0, monkeypatch) == 0.3


def test_of_several_tied_thresholds_the_middle_one_is_chosen(monkeypatch) -> None:
    """Rows as cluster_sweep writes them: four thresholds within two sds of the best (0.6), one clearly worse.
    The middle of the tied range 0.6-0.85 is 0.725: 0.7 is nearest. Breaking towards the highest (the rule it
    replaced) would take 0.85; the plain argmax 0.6."""
    def row(t: float, gap: float, sd: float) -> dict[str, float]:
        return {"threshold": t, "expected_f1": 0.9767 - gap, "expected_f1_gap": gap, "expected_f1_sd": sd}

    rows = [row(0.5, 0.0011, 0.0004), row(0.6, 0.0, 0.0), row(0.7, 0.00003, 0.00015),
            row(0.8, 0.0009, 0.00056), row(0.85, 0.0011, 0.00065), row(0.9, 0.0037, 0.00077)]
    monkeypatch.setattr(threshold_module, "TIE_SDS", 2.0)
    assert [r["threshold"] for r in rows if choose_on_clusters(rows) is r] == [0.7]
    assert [r["threshold"] for r in rows if r["tied_with_best"]] == [0.6, 0.7, 0.8, 0.85]
    monkeypatch.setattr(threshold_module, "TIE_SDS", 0.0)
    assert choose_on_clusters(rows)["threshold"] == 0.6


def test_noise_is_that_of_the_pairs_on_which_the_thresholds_differ() -> None:
    low, high = cluster_sweep(edges_table([(1000, 0.99), (100, 0.47)]), [0.3, 0.85], 1152.0, unblocked=0.0)
    # the best (0.3) against itself: no gap, no noise; 0.85 differs from it on the 100 pairs at 0.47
    assert low["expected_f1_gap"] == 0.0 and low["expected_f1_sd"] == 0.0
    assert high["expected_f1_gap"] == pytest.approx(2 * 1037 / 2252 - 2 * 990 / 2152, abs=1e-6)
    assert high["expected_f1_sd"] == pytest.approx(2 * (100 * 0.47 * 0.53) ** 0.5 / (1100 + 1152.0), rel=1e-4)


def chains(n: int, p: float) -> duckdb.DuckDBPyConnection:
    """``n`` triples A-B, B-C scored at ``p``; A-C was never scored (no blocking key in common)."""
    rows = []
    for k in range(n):
        rows += [(f"a{k}", f"b{k}", p), (f"b{k}", f"c{k}", p)]
    con = duckdb.connect()
    con.register("frame", pd.DataFrame(rows, columns=["node_id_l", "node_id_r", "match_probability"]))
    con.execute("CREATE TABLE _edges AS SELECT * FROM frame")
    return con


def test_unscored_pairs_inside_clusters_are_credited_up_to_the_unblocked_matches_joined() -> None:
    """100 triples at 0.9: 200 scored pairs (180 expected true), 100 unscored A-C pairs inside clusters.
    On a mixed link (``duplicate_free``) the credited estimate is chosen on alone."""
    expected_true = 180.0 + 100.0           # the scored matches and, say, 100 unblocked ones
    con = chains(100, 0.9)
    mixed = {"duplicate_free": ["a"]}
    lower = cluster_sweep(con, [0.5], expected_true, unblocked=0.0, **mixed)[0]
    assert lower["unscored_pairs_inside"] == 100 and lower["unscored_credited_true"] == 0
    assert lower["expected_f1"] == pytest.approx(2 * 180 / (300 + expected_true), abs=1e-4)
    assert lower["expected_f1"] == lower["expected_f1_bounds"][0]
    # many unblocked matches: each unscored pair is true as often as the scored ones (0.9)
    many = cluster_sweep(con, [0.5], expected_true, unblocked=100.0, **mixed)[0]
    assert many["unscored_credited_true"] == pytest.approx(90.0)
    credited_f1 = 2 * 270 / (300 + expected_true)
    assert many["expected_f1"] == pytest.approx(credited_f1, abs=1e-4)
    # few: no more than the unblocked matches times the share of the blocked ones the clusters join (180/180)
    few = cluster_sweep(con, [0.5], 180.0 + 20.0, unblocked=20.0, **mixed)[0]
    assert few["unscored_credited_true"] == pytest.approx(20.0)
    # pure deduplication: midway between the credited estimate and the upper bound (unscored pairs left out)
    dedupe = cluster_sweep(con, [0.5], expected_true, unblocked=100.0)[0]
    assert dedupe["expected_f1"] == pytest.approx((credited_f1 + dedupe["expected_f1_bounds"][1]) / 2, abs=1e-4)
    # no estimate of the blocking recall: the midpoint of the bounds on pure deduplication, as before
    midpoint = cluster_sweep(con, [0.5], expected_true)[0]
    assert midpoint["expected_f1"] == pytest.approx(sum(midpoint["expected_f1_bounds"]) / 2, abs=1e-4)
