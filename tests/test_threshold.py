"""The labels-free operating point, re-clustering, chain guards and the new fuzzy evidence (issue 13)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.encode import encode_extract
from linkage.encode.evidence import dob_digit_neighbourhood, name_aliases
from linkage.keys import generate_key
from linkage.link import link_extracts
from linkage.link.cluster import one_to_one_posteriors, split_oversized_clusters
from linkage.link.config import LinkConfig
from linkage.link.recluster import recluster
from linkage.link.threshold import (
    best_threshold,
    comparable_pairs,
    curve_from_probabilities,
    estimate_prior,
    expected_curve,
    logit2,
)
from linkage.normalise import date_digits
from linkage.synth.messy import generate_messy
from linkage.synth.params import MessyParams

ROOT = Path(__file__).resolve().parents[1]
MESSY_CONFIG = ROOT / "configs" / "partners" / "messy.yaml"
CLEAN = {"missing": 0.02, "name_typo": 0.02, "nickname": 0.0, "surname_change": 0.0, "name_swap": 0.0,
         "dob_digit_typo": 0.01, "dob_year_off": 0.0, "dob_day_month_swap": 0.0, "postcode_typo": 0.01,
         "postcode_moved": 0.02}


def fast_config(**clustering) -> LinkConfig:
    cfg = LinkConfig()
    cfg.training.u_max_pairs = 2e5
    for name, value in clustering.items():
        setattr(cfg.clustering, name, value)
    return cfg


def _encode_and_link(base: Path, params: MessyParams, key: bytes, cfg: LinkConfig, name: str) -> Path:
    raw = base / f"raw_{name}"
    generate_messy(500, 5, raw, params)
    enc = base / f"enc_{name}"
    encode_extract(MESSY_CONFIG, key, raw / "people.csv", enc, quiet=True)
    link_extracts([enc], base / f"link_{name}", cfg, quiet=True)
    return base / f"link_{name}"


@pytest.fixture(scope="module")
def links(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("threshold")
    key = generate_key()
    messy = _encode_and_link(base, MessyParams(), key, fast_config(), "messy")
    clean = _encode_and_link(base, MessyParams(**CLEAN), key, fast_config(), "clean")
    return {"base": base, "key": key, "messy": messy, "clean": clean}


def _op(link: Path) -> dict:
    return json.loads((link / "manifest.json").read_text())["operating_point"]


# --- the operating point comes from the model ---------------------------------------------------------

def test_prior_fixed_point_recovers_a_known_prior() -> None:
    """A two-component mixture with true Bayes factors: the fixed point finds the share of matches from a
    starting prior 20x too low (as the rule-based estimate was on the outside data)."""
    rng = np.random.default_rng(0)
    n_pairs, n_match, mu_m, mu_u, sd = 10_000_000, 2_000, 8.0, -4.0, 2.0
    scores = np.concatenate([rng.normal(mu_m, sd, n_match), rng.normal(mu_u, sd, n_pairs - n_match)])
    bits = ((scores - mu_u) ** 2 - (scores - mu_m) ** 2) / (2 * sd**2) / math.log(2)
    values, counts = np.unique(np.round(bits[bits > -40], 1), return_counts=True)
    prior, _ = estimate_prior(list(zip(values.tolist(), counts.tolist(), strict=True)), n_pairs,
                              start=n_match / n_pairs / 20)
    assert prior == pytest.approx(n_match / n_pairs, rel=0.1)


def test_expected_f1_threshold_follows_the_probabilities() -> None:
    """Where the model says pairs are more often true, the chosen threshold falls; a weaker model raises it."""
    sharp = [(0.999, 900), (0.6, 50), (0.3, 50), (0.01, 1000)]
    vague = [(0.999, 500), (0.6, 450), (0.3, 50), (0.01, 1000)]
    t_sharp = best_threshold(curve_from_probabilities(sharp), 0.05, 0.999)
    t_vague = best_threshold(curve_from_probabilities(vague), 0.05, 0.999)
    assert t_vague < t_sharp or t_sharp == t_vague == 0.6
    # and the curve is built from the prior: a larger prior makes every pair likelier, lowering the cut
    hist = [(20.0, 100), (14.0, 50), (12.0, 50), (10.0, 50), (0.0, 10_000)]
    low = best_threshold(expected_curve(hist, 1e-5), 0.05, 0.999)
    high = best_threshold(expected_curve(hist, 1e-3), 0.05, 0.999)
    assert high != low


def test_comparable_pairs_per_link_type() -> None:
    assert comparable_pairs({"a": 10}, "dedupe_only", ["a"]) == 45
    assert comparable_pairs({"a": 10, "b": 5}, "link_only", []) == 50
    assert comparable_pairs({"a": 10, "b": 5}, "link_and_dedupe", ["a"]) == 95


def test_auto_threshold_is_computed_from_the_model_and_moves_with_the_error_rate(links) -> None:
    messy, clean = _op(links["messy"]), _op(links["clean"])
    for op in (messy, clean):
        assert op["threshold_source"] == "expected F1"
        # the threshold is the best expected F1 of the sweep the manifest records, not a constant
        # (rows within the model's noise of the best are a tie: the one nearest the middle of the tied range)
        best = max(op["cluster_sweep"], key=lambda r: (r["expected_f1"], r["threshold"]))
        assert best["tied_with_best"]
        tied = [r["threshold"] for r in op["cluster_sweep"] if r["tied_with_best"]]
        middle = (min(tied) + max(tied)) / 2
        assert op["threshold"] in tied
        assert abs(op["threshold"] - middle) <= min(abs(t - middle) for t in tied) + 1e-9
        assert 0 < op["prior"] < 1
    # heavier errors: a different prior and a different operating point
    assert not math.isclose(messy["prior"], clean["prior"], rel_tol=0.05)
    assert messy["threshold"] != clean["threshold"]
    assert messy["expected_f1"] < clean["expected_f1"]


def test_report_shows_the_threshold(links) -> None:
    html = (links["messy"] / "report.html").read_text()
    assert "Operating point (threshold)" in html and "expected precision" in html.lower()


# --- re-clustering ------------------------------------------------------------------------------------

def test_recluster_equals_a_full_rerun_at_that_threshold(links, tmp_path) -> None:
    base = links["base"]
    recluster(links["messy"], tmp_path / "re_07", 0.7, quiet=True)
    full = link_extracts([base / "enc_messy"], tmp_path / "full_07",
                         fast_config(threshold_match_probability=0.7), quiet=True)
    assert full["operating_point"]["threshold"] == 0.7
    a = pd.read_parquet(tmp_path / "re_07" / "crosswalk.parquet")
    b = pd.read_parquet(tmp_path / "full_07" / "crosswalk.parquet")
    pd.testing.assert_frame_equal(a.sort_values("record_id").reset_index(drop=True),
                                  b.sort_values("record_id").reset_index(drop=True))
    # and 'auto' reproduces the original link's partition
    recluster(links["messy"], tmp_path / "re_auto", "auto", quiet=True)
    orig = pd.read_parquet(links["messy"] / "crosswalk.parquet").sort_values("record_id").reset_index(drop=True)
    again = pd.read_parquet(tmp_path / "re_auto" / "crosswalk.parquet").sort_values("record_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(orig, again)
    # a lower threshold links more
    assert a.person_id.nunique() != orig.person_id.nunique() or _op(links["messy"])["threshold"] == 0.7


def test_cluster_command_refuses_a_threshold_below_the_kept_pairs(links, tmp_path) -> None:
    result = CliRunner().invoke(app, ["cluster", "--link", str(links["messy"]), "--threshold", "0.001",
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert "pairs_min_match_probability" in result.output + (result.stderr or "")
    result = CliRunner().invoke(app, ["cluster", "--link", str(links["messy"]), "--threshold", "0.9",
                                      "--out", str(tmp_path / "y")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "y" / "crosswalk.parquet").is_file() and (tmp_path / "y" / "report.html").is_file()


# --- chain guard and one-to-one posteriors ------------------------------------------------------------

def _graph(con: duckdb.DuckDBPyConnection, edges: list[tuple[str, str, float]], sources: dict[str, str]) -> None:
    con.execute("CREATE OR REPLACE TABLE _nodes AS SELECT * FROM (VALUES " +
                ", ".join(f"('{n}', '{s}')" for n, s in sources.items()) + ") t(node_id, source_dataset)")
    con.execute("CREATE OR REPLACE TABLE _edges AS SELECT * FROM (VALUES " +
                ", ".join(f"('{a}', '{b}', {p}, '{sources[a]}', '{sources[b]}')" for a, b, p in edges) +
                ") t(node_id_l, node_id_r, match_probability, source_dataset_l, source_dataset_r)")


def test_oversized_chain_is_split_at_its_weak_link() -> None:
    # two people of 4 records each (strong links) joined by one weak link: one cluster of 8 at 0.5
    people = [[f"a{i}" for i in range(4)], [f"b{i}" for i in range(4)]]
    edges = [(p[i], p[j], 0.9999) for p in people for i in range(4) for j in range(i + 1, 4)] + [("a3", "b0", 0.6)]
    con = duckdb.connect()
    _graph(con, edges, {n: "s0" for p in people for n in p})
    con.execute("CREATE TABLE _clusters AS SELECT node_id, 'c' AS cluster_id FROM _nodes")
    assert split_oversized_clusters(con, max_size=5, threshold=0.5) == 1
    groups = con.execute("SELECT list(node_id ORDER BY node_id) FROM _clusters GROUP BY cluster_id").fetchall()
    assert sorted(g[0] for g in groups) == [people[0], people[1]]
    # weakened guard (limit above the chain): the chain stays merged
    con.execute("CREATE OR REPLACE TABLE _clusters AS SELECT node_id, 'c' AS cluster_id FROM _nodes")
    assert split_oversized_clusters(con, max_size=8, threshold=0.5) == 0
    assert con.execute("SELECT count(DISTINCT cluster_id) FROM _clusters").fetchall()[0][0] == 1


def test_one_to_one_posteriors_raise_a_lone_candidate_and_lower_a_contested_one() -> None:
    # a0's only candidate is b0 (moderate); a1 has two candidates, one much stronger
    sources = {"a0": "s0", "a1": "s0", "a2": "s0", "b0": "s1", "b1": "s1", "b2": "s1"}
    edges = [("a0", "b0", 0.2), ("a1", "b1", 0.999), ("a1", "b2", 0.3), ("a2", "b2", 0.999)]
    con = duckdb.connect()
    _graph(con, edges, sources)
    one_to_one_posteriors(con, ["s0", "s1"])
    p = {(a, b): q for a, b, q in con.execute("SELECT node_id_l, node_id_r, match_probability FROM _edges").fetchall()}
    assert p[("a0", "b0")] > 0.5          # nearly every record has a match, and this is a0's only candidate
    assert p[("a1", "b2")] < 0.3          # contested by two far stronger links
    assert p[("a1", "b1")] > 0.99


# --- fuzzy evidence -----------------------------------------------------------------------------------

def test_non_calendar_dates_keep_their_digits_but_never_parse() -> None:
    assert date_digits("12/81/1985", ["%d/%m/%Y"]) == "19858112"
    assert date_digits("1985-02-30", ["%Y-%m-%d"]) == "19850230"
    assert date_digits("not a date", ["%d/%m/%Y"]) is None
    a, b = set(dob_digit_neighbourhood("19850312")), set(dob_digit_neighbourhood("19850812"))
    assert a & b                                         # one digit apart
    assert not a & set(dob_digit_neighbourhood("19530821"))


def test_nickname_aliases_link_nickname_and_formal_name_only() -> None:
    assert "william" in name_aliases("bill")
    assert "margaret" in name_aliases("peggy")
    assert "gary" in name_aliases("gaz")                 # UK supplement
    assert "william" not in name_aliases("robert") and "robert" not in name_aliases("william")


def test_encoded_extract_flags_non_calendar_dates(links) -> None:
    manifest = json.loads((links["base"] / "enc_messy" / "manifest.json").read_text())
    assert manifest["counts"]["non_calendar_dobs_kept_as_digits"] > 0
    tokens = pd.read_parquet(links["base"] / "enc_messy" / "tokens.parquet", columns=["dob__exact", "dob__del1"])
    digits_only = tokens.dob__exact.isna() & tokens.dob__del1.notna()
    assert digits_only.sum() > 0
    assert logit2(0.5) == 0
