"""The prior corrected for the matches no blocking rule produced (``linkage.link.threshold``)."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from linkage.link.threshold import (
    blocking_pattern_histogram,
    blocking_recall,
    blocking_structure,
    column_block,
    estimate_prior,
    estimate_prior_with_recall,
    rule_equalities,
)

SPECS = {"dob__exact": {"field": "date_of_birth", "encoding": "exact"},
         "postcode__exact": {"field": "postcode", "encoding": "exact"},
         "given_name__exact": {"field": "given_name", "encoding": "exact+dob"},
         "surname__exact": {"field": "surname", "encoding": "exact"},
         "full_name__near_pc": {"field": "full_name", "encoding": "near_pc+postcode"}}


def simulated_blocked_pairs(n_match: int, p_dob: float, p_pc: float, seed: int = 0
                            ) -> list[tuple[float, int, tuple[bool, ...]]]:
    """Pairs the rules [dob] and [postcode] produce: matches agree on each field independently (p_dob, p_pc)
    and score high; blocked non-matches (one field agreeing by chance) score low. Unblocked pairs are lost."""
    rng = np.random.default_rng(seed)
    dob = rng.random(n_match) < p_dob
    pc = rng.random(n_match) < p_pc
    kept = dob | pc
    bits = np.round(rng.normal(22.0, 2.0, int(kept.sum())), 1)
    rows = [(float(b), 1, (bool(d), bool(p))) for b, d, p in zip(bits, dob[kept], pc[kept], strict=True)]
    n_non = 200_000
    non_dob = rng.random(n_non) < 0.5
    non_bits = np.round(rng.normal(-8.0, 2.0, n_non), 1)
    rows += [(float(b), 1, (bool(d), not bool(d))) for b, d in zip(non_bits, non_dob, strict=True)]
    return rows


def test_corrected_prior_recovers_matches_the_blocking_missed() -> None:
    """Blocking on date or postcode misses the 20% of matches that agree on neither (0.4 x 0.5): the
    uncorrected fixed point lands 20% low, the corrected one on the true prior."""
    n_pairs, n_match = 50_000_000, 5_000
    rows = simulated_blocked_pairs(n_match, p_dob=0.6, p_pc=0.5)
    structure = blocking_structure([["dob__exact"], ["postcode__exact"]], SPECS)
    assert structure is not None
    histogram: dict[float, int] = {}
    for bits, n, _ in rows:
        histogram[bits] = histogram.get(bits, 0) + n
    hist = sorted(histogram.items())
    true_prior = n_match / n_pairs
    start = true_prior / 10

    uncorrected, _ = estimate_prior(hist, n_pairs, start)
    assert uncorrected < 0.85 * true_prior  # the blocking's recall, 0.8, carried into the prior

    corrected, _, recall = estimate_prior_with_recall(
        hist, n_pairs, start, lambda prior: blocking_recall(rows, structure, prior) or 1.0)
    assert recall == pytest.approx(0.8, abs=0.02)
    assert corrected == pytest.approx(true_prior, rel=0.04)


def test_recall_is_one_when_every_match_is_blocked_and_unknown_when_one_field_gates_every_rule() -> None:
    rows = simulated_blocked_pairs(3_000, p_dob=1.0, p_pc=0.5)
    structure = blocking_structure([["dob__exact"], ["postcode__exact"]], SPECS)
    assert structure is not None
    assert blocking_recall(rows, structure, 1e-4) == pytest.approx(1.0, abs=1e-3)
    # every rule needs the date: its failures among matches are never seen, so no estimate (no correction)
    gated = blocking_structure([["dob__exact"], ["dob__exact", "postcode__exact"]], SPECS)
    assert gated is not None
    assert blocking_recall([(b, n, (f[0], f[0], f[1])) for b, n, f in rows], gated, 1e-4) is None


def test_salted_columns_belong_to_their_salts_block() -> None:
    """A name salted with the date agrees only where the date does: it is counted with the date, not as an
    independent name field (which would overstate the recall)."""
    assert column_block("given_name__exact", SPECS["given_name__exact"]) == "date_of_birth"
    assert column_block("full_name__near_pc", SPECS["full_name__near_pc"]) == "postcode"
    assert column_block("surname__exact", SPECS["surname__exact"]) == "name"
    structure = blocking_structure([["given_name__exact", "postcode__exact"], ["surname__exact"]], SPECS)
    assert structure == [{"date_of_birth": [("given_name__exact", "given_name__exact")],
                          "postcode": [("postcode__exact", "postcode__exact")]},
                         {"name": [("surname__exact", "surname__exact")]}]


def test_rule_sql_is_parsed_only_when_it_is_a_conjunction_of_equalities() -> None:
    assert rule_equalities("l.name__given_shared = r.name__surname_shared AND l.dob__exact = r.dob__exact") == [
        ("name__given_shared", "name__surname_shared"), ("dob__exact", "dob__exact")]
    assert rule_equalities("l.dob__exact = r.dob__exact OR l.postcode__exact = r.postcode__exact") is None
    assert rule_equalities("levenshtein(l.a, r.a) < 2") is None
    assert blocking_structure(["l.unknown__exact = r.unknown__exact"], SPECS) is None


def test_rule_parts_are_read_from_the_scored_pairs_tokens() -> None:
    con = duckdb.connect()
    con.execute("""CREATE TABLE ids AS SELECT * FROM (VALUES
        ('a', 'D1', 'P1', ['n1']), ('b', 'D1', 'P2', ['n2']), ('c', 'D2', 'P2', ['n2', 'n3']),
        ('d', NULL, NULL, NULL)) t(identity_id, dob__exact, postcode__exact, full_name__near_pc)""")
    # identities a and d are aliases of record A (b: record B, c: record C)
    con.execute("""CREATE TABLE scored AS SELECT * FROM (VALUES ('a', 'b', 'A', 'B', 3.0), ('b', 'c', 'B', 'C', 1.0),
        ('d', 'b', 'A', 'B', -2.0)) t(identity_id_l, identity_id_r, record_id_l, record_id_r, match_weight)""")
    structure = blocking_structure([["dob__exact"], ["postcode__exact", "full_name__near_pc"]], SPECS)
    assert structure is not None
    rows = blocking_pattern_histogram(con, "scored", "ids", structure, rule_prior=0.5)
    # rule parts: (rule 0, date), (rule 1, postcode): the near-pc column is salted with the postcode
    assert sorted(rows) == [(-2.0, 1, (False, False)), (1.0, 1, (False, True)), (3.0, 1, (True, False))]
    # per record pair: A-B is blocked through identity a, at its best weight
    by_record = blocking_pattern_histogram(con, "scored", "ids", structure, rule_prior=0.5, per_record_pair=True)
    assert sorted(by_record) == [(1.0, 1, (False, True)), (3.0, 1, (True, False))]


def test_choose_operating_point_corrects_the_prior_by_default() -> None:
    """End to end on DuckDB tables: scored pairs whose tokens agree on the date, the postcode or both; the
    matches that agree on neither were never scored. Turned off, the prior is the blocked share; by default
    (on), it is the true one and the manifest says the estimated recall."""
    from linkage.link.config import LinkConfig
    from linkage.link.threshold import choose_operating_point, comparable_pairs

    rows = simulated_blocked_pairs(4_000, p_dob=0.6, p_pc=0.5, seed=1)
    identities, scored = [], []
    for k, (bits, _, (dob, pc)) in enumerate(rows):
        left, right = f"L{k}", f"R{k}"
        identities.append((left, left, f"d{k}", f"p{k}"))
        identities.append((right, right, f"d{k}" if dob else f"x{k}", f"p{k}" if pc else None))
        scored.append((left, right, left, right, bits))
    import pandas as pd

    con = duckdb.connect()
    ids_frame = pd.DataFrame(identities, columns=["identity_id", "record_id", "dob__exact", "postcode__exact"])
    con.register("ids_frame", ids_frame)
    con.execute("CREATE TABLE _identities AS SELECT * FROM ids_frame")
    people = {"s": 10_000}
    n_pairs = comparable_pairs(people, "dedupe_only", [])
    true_prior = 4_000 / n_pairs
    config = LinkConfig()
    rule_prior = true_prior / 5  # as the rule-based start often is
    results = {}
    for correct in (False, None):
        scored_frame = pd.DataFrame([(a, b, c, d, w + logit2_(rule_prior)) for a, b, c, d, w in scored],
                                    columns=["identity_id_l", "identity_id_r", "record_id_l", "record_id_r",
                                             "match_weight"])
        con.register("scored_frame", scored_frame)
        con.execute("CREATE OR REPLACE TABLE _scored AS SELECT *, CAST(NULL AS DOUBLE) AS match_probability "
                    "FROM scored_frame")
        results[correct] = choose_operating_point(
            con, "_scored", rule_prior, config, people, "dedupe_only", [],
            rules=[["dob__exact"], ["postcode__exact"]], column_specs=SPECS, correct_for_blocking=correct)
    assert results[False]["prior"] < 0.85 * true_prior and results[False]["blocking_recall"] is None
    assert results[None]["prior"] == pytest.approx(true_prior, rel=0.05)
    assert results[None]["blocking_recall"] == pytest.approx(0.8, abs=0.02)
    assert results[None]["expected_true_unblocked"] == pytest.approx(0.2 * 4_000, rel=0.1)


def logit2_(p: float) -> float:
    import math

    return math.log2(p / (1 - p))
