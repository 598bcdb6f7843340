"""The labels-free operating point: a prior re-estimated from the scored pairs and the threshold that
maximises expected F1.

Splink's prior comes from deterministic rules and an assumed recall; on messy data that guess can be
several times off, and every match probability (and so any fixed threshold) moves with it. Here the
model's own Bayes factors decide both:

* **Prior.** With m and u fixed, the maximum-likelihood prior over all ``N`` comparable pairs solves
  ``lambda = sum_i p_i(lambda) / N``, where ``p_i`` is pair i's match probability under that prior. Pairs
  that no blocking rule produced carry almost no match probability, so the sum runs over the scored
  pairs (kept down to a low floor). The fixed point is found by iteration from Splink's rule-based prior.
* **Threshold.** With calibrated probabilities, a threshold t links ``E[pos] = #(p >= t)`` pairs of which
  ``E[TP] = sum_{p >= t} p`` are expected true, out of ``E[M] = sum_all p`` true pairs: expected
  precision, recall and F1 follow, and the threshold of highest expected F1 is chosen. Both count the
  matches no blocking rule produced (their share estimated from the scored pairs: the section above
  :func:`rule_equalities`); on clusters, thresholds whose expected F1 is within the model's own noise of the
  best are a tie, broken towards the higher threshold (:func:`choose_on_clusters`).

Only a histogram of the pairs' Bayes factors (0.1-bit bins) is needed, so the curve is kept in the link
manifest and re-thresholding (``linkage cluster``) needs no re-scoring.
"""

from __future__ import annotations

import math
import re
from typing import Any

import duckdb

BIN_BITS = 0.1            # width of a Bayes-factor bin, in bits
SCORING_FLOOR = 1e-4      # pairs scored down to this probability (under the rule-based prior) for the estimate
MAX_ITERATIONS = 500


def logit2(p: float) -> float:
    return math.log2(p / (1.0 - p))


def prob_from_bits(bits: float) -> float:
    if bits > 60:
        return 1.0
    if bits < -60:
        return 0.0
    return 1.0 / (1.0 + 2.0 ** (-bits))


def comparable_pairs(identities: dict[str, int], link_type: str, dedupe: list[str]) -> int:
    """How many identity-row pairs the link can compare at all (the denominator of the prior)."""
    sizes = list(identities.values())
    total = sum(sizes)
    if link_type == "dedupe_only":
        return total * (total - 1) // 2
    cross = (total * total - sum(n * n for n in sizes)) // 2
    within = sum(n * (n - 1) // 2 for source, n in identities.items() if source in dedupe)
    return cross + within if link_type == "link_and_dedupe" else cross


def weight_histogram(con: duckdb.DuckDBPyConnection, predictions_table: str,
                     prior: float) -> list[tuple[float, int]]:
    """(Bayes factor in bits, pairs) per 0.1-bit bin: match weight minus the prior's log-odds."""
    offset = logit2(prior)
    rows = con.execute(
        f"SELECT round((match_weight - ?) / {BIN_BITS}) AS b, count(*) FROM {predictions_table} "
        "WHERE match_weight IS NOT NULL GROUP BY b ORDER BY b", [offset]).fetchall()
    return [(round(float(b) * BIN_BITS, 4), int(n)) for b, n in rows]


def estimate_prior(histogram: list[tuple[float, int]], n_pairs: int, start: float) -> tuple[float, int]:
    """Fixed point of lambda = sum p_i(lambda) / N; returns (prior, iterations)."""
    if n_pairs <= 0 or not histogram:
        return start, 0
    lam = min(max(start, 1e-12), 0.5)
    for i in range(1, MAX_ITERATIONS + 1):
        offset = logit2(lam)
        expected = sum(n * prob_from_bits(offset + bits) for bits, n in histogram)
        new = min(max(expected / n_pairs, 1e-12), 0.5)
        if abs(new - lam) <= 1e-7 * lam:
            return new, i
        lam = new
    return lam, MAX_ITERATIONS


def expected_curve(histogram: list[tuple[float, int]], prior: float,
                   extra_expected_true: float = 0.0) -> list[dict[str, float]]:
    """Per candidate threshold (each bin's probability, descending): expected pairs linked, precision,
    recall and F1 among the scored pairs (recall also counts ``extra_expected_true`` matches not scored)."""
    offset = logit2(prior)
    probs = [(prob_from_bits(offset + bits), n) for bits, n in sorted(histogram, reverse=True)]
    expected_true = sum(p * n for p, n in probs) + extra_expected_true
    out, tp, pos = [], 0.0, 0
    for p, n in probs:
        tp += p * n
        pos += n
        precision = tp / pos if pos else 1.0
        recall = tp / expected_true if expected_true else 0.0
        f1 = 2 * tp / (pos + expected_true) if pos + expected_true else 0.0
        out.append({"threshold": p, "pairs": pos, "expected_precision": precision, "expected_recall": recall,
                    "expected_f1": f1})
    return out


def curve_from_probabilities(probabilities: list[tuple[float, int]],
                             extra_expected_true: float = 0.0) -> list[dict[str, float]]:
    """Like :func:`expected_curve`, from (probability, pairs) rows; ``extra_expected_true`` adds matches
    expected among pairs not in the rows (scored below the kept floor)."""
    probs = sorted(probabilities, reverse=True)
    expected_true = sum(p * n for p, n in probs) + extra_expected_true
    out, tp, pos = [], 0.0, 0
    for p, n in probs:
        tp += p * n
        pos += n
        out.append({"threshold": p, "pairs": pos, "expected_precision": tp / pos if pos else 1.0,
                    "expected_recall": tp / expected_true if expected_true else 0.0,
                    "expected_f1": 2 * tp / (pos + expected_true) if pos + expected_true else 0.0})
    return out


def edge_probabilities(con: duckdb.DuckDBPyConnection, edges_table: str = "_edges") -> list[tuple[float, int]]:
    """(probability, record pairs) of the clustering edges, in 0.1-bit bins of log-odds (bin centre)."""
    rows = con.execute(f"""SELECT round(log2(p / (1 - p)) / {BIN_BITS}) AS b, count(*) FROM (
        SELECT least(greatest(match_probability, 1e-15), 1 - 1e-15) AS p FROM {edges_table}) GROUP BY b ORDER BY b
        """).fetchall()
    return [(prob_from_bits(float(b) * BIN_BITS), int(n)) for b, n in rows]


def choose_threshold_on_edges(con: duckdb.DuckDBPyConnection, op: dict[str, Any], low: float,
                              high: float, transitive: bool = False,
                              duplicate_free: list[str] | None = None) -> dict[str, Any]:
    """Threshold of highest expected F1 over the record edges actually clustered (after one-to-one
    re-weighting), with the matches expected below the kept floor added to the denominator. With
    ``transitive`` (some source is deduplicated) the choice is made on the clusters (:func:`cluster_sweep`)."""
    floor = float(op.get("pairs_min_match_probability", 0.0))
    hist = histogram_from_manifest(op) if op.get("bayes_factor_histogram") else []
    offset = logit2(op["prior"]) if hist else 0.0
    below = sum(n * p for b, n in hist if (p := prob_from_bits(offset + b)) < floor)
    probs = edge_probabilities(con)
    # record pairs that are matches and that no blocking rule produced (not in any edge, never linkable)
    record_recall = op.get("record_blocking_recall")
    unblocked = (sum(p * n for p, n in probs) + below) * (1.0 / record_recall - 1.0) if record_recall else 0.0
    curve = curve_from_probabilities(probs, below + unblocked)
    threshold = best_threshold(curve, low, high)
    at = [c for c in curve if c["threshold"] >= threshold]
    chosen = at[-1] if at else None
    clusters: list[dict[str, Any]] = []
    if transitive:
        # Deduplication: clusters imply pairs no edge scored, so choose on the clusters' expected F1.
        expected_true = sum(p * n for p, n in probs) + below + unblocked
        candidates = sorted({threshold, *[c for c in CLUSTER_CANDIDATES if low <= c <= high]})
        clusters = cluster_sweep(con, candidates, expected_true, duplicate_free=duplicate_free,
                                 unblocked=unblocked if record_recall else None)
        best = choose_on_clusters(clusters)
        threshold = float(best["threshold"])
        chosen = {k: best[k] for k in ("expected_precision", "expected_recall", "expected_f1")}
    return {"threshold": threshold, "chosen_on": "clusters" if transitive else "record pairs",
            "cluster_sweep": clusters,
            "expected_precision": round(chosen["expected_precision"], 4) if chosen else None,
            "expected_recall": round(chosen["expected_recall"], 4) if chosen else None,
            "expected_f1": round(chosen["expected_f1"], 4) if chosen else None,
            "expected_true_below_floor": round(below, 1), "expected_true_unblocked_records": round(unblocked, 1),
            "edge_probability_histogram": {"probability": [p for p, _ in probs], "pairs": [n for _, n in probs]},
            "sweep": sweep(curve, SWEEP_THRESHOLDS)}


CLUSTER_CANDIDATES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999)


def _sweep_edges_sql(duplicate_free: list[str], edges_table: str) -> str:
    """Edges as one-to-one clustering could keep them: between two duplicate-free sources only a pair that
    is each record's best candidate in the other source (single best link); other edges all."""
    if len(duplicate_free) < 2:
        return f"SELECT node_id_l, node_id_r, match_probability FROM {edges_table}"
    free = ", ".join("'" + s.replace("'", "''") + "'" for s in duplicate_free)
    return f"""WITH e AS (SELECT *, source_dataset_l IN ({free}) AND source_dataset_r IN ({free})
                                 AND source_dataset_l <> source_dataset_r AS oto FROM {edges_table}),
        sides AS (SELECT node_id_l AS node, source_dataset_r AS other, match_probability AS p FROM e WHERE oto
                  UNION ALL SELECT node_id_r, source_dataset_l, match_probability FROM e WHERE oto),
        best AS (SELECT node, other, max(p) AS p FROM sides GROUP BY ALL)
        SELECT e.node_id_l, e.node_id_r, e.match_probability FROM e
        LEFT JOIN best bl ON bl.node = e.node_id_l AND bl.other = e.source_dataset_r
        LEFT JOIN best br ON br.node = e.node_id_r AND br.other = e.source_dataset_l
        WHERE NOT e.oto OR (e.match_probability >= bl.p AND e.match_probability >= br.p)"""


def cluster_sweep(con: duckdb.DuckDBPyConnection, thresholds: list[float], expected_true: float,
                  edges_table: str = "_edges", duplicate_free: list[str] | None = None,
                  unblocked: float | None = None) -> list[dict[str, Any]]:
    """Expected pairwise precision/recall/F1 of the *clusters* (connected components) at each threshold.

    Linking A-B and B-C also links A-C: the pairs a partition implies are all pairs within a cluster, and
    only the scored ones carry probability. An unscored pair inside a cluster counted as a non-match gives
    the lower bound of F1 (which makes long chains expensive), left out the upper bound; both are kept.

    ``expected_f1``, the value the threshold is chosen on, is the old rule's (the lower bound on mixed links,
    one-to-one sources beside a deduplicated one, ``duplicate_free``, where chains through the deduplicated
    source are mostly false; the midpoint of the bounds on pure deduplication) with the lower bound raised by
    ``unblocked``, the matches no blocking rule produced (estimated from the blocking recall; see the section
    above :func:`rule_equalities`): an unscored pair inside a cluster is a match as often as the cluster's
    scored pairs are (their expected precision), but no more of them can be matches than the unblocked matches
    whose two records the clusters join (taken as the same share as of the blocked matches, the expected recall
    among them), so ``min(precision x unscored, unblocked x recall)`` pairs are credited as true. Where the
    blocking missed many matches (messy data, salted keys) the clusters' transitive closure earns back part of
    what the blocking lost; where it missed few, this is the lower bound. The credit is itself low where the
    recall is over-estimated (FEBRL3: 0.993 against 0.978 true), hence the midpoint with the upper bound kept on
    deduplication. Without the estimate (``None``): the old rule.

    Each row's ``expected_f1_sd`` is the model's own noise of the F1 difference to the best row (Bernoulli
    variance of the scored pairs on which the two partitions differ): :func:`choose_on_clusters` treats rows
    within :data:`TIE_SDS` of it as tied. Also gives the cluster-size distribution per threshold for the report.
    """
    import numpy as np
    import pandas as pd

    from linkage.graph import index_component_labels

    df = con.execute(_sweep_edges_sql(duplicate_free or [], edges_table)).df()
    codes, uniques = pd.factorize(pd.concat([df.node_id_l, df.node_id_r], ignore_index=True))
    n_edges, n_nodes = len(df), len(uniques)
    a, b = codes[:n_edges], codes[n_edges:]
    p = df.match_probability.to_numpy(dtype=float)
    variance = p * (1.0 - p)
    rows: list[dict[str, Any]] = []
    insides, f1s, denominators = [], [], []
    for t in thresholds:
        keep = p >= t
        labels = index_component_labels(n_nodes, a[keep], b[keep])
        sizes = np.bincount(labels)
        linked = float((sizes * (sizes - 1) // 2).sum())
        inside = labels[a] == labels[b]
        tp, scored_inside = float(p[inside].sum()), float(inside.sum())
        unscored = max(linked - scored_inside, 0.0)
        f1_low = 2 * tp / (linked + expected_true) if linked + expected_true else 0.0
        f1_high = 2 * tp / (scored_inside + expected_true) if scored_inside + expected_true else 0.0
        if unblocked is None:
            credited = 0.0
            f1 = f1_low if duplicate_free else (f1_low + f1_high) / 2
        else:
            # no more than the unblocked matches whose records the clusters join: the share of the blocked
            # matches they join (expected recall among those) stands in for it
            joined = min(tp / (expected_true - unblocked), 1.0) if expected_true > unblocked else 0.0
            credited = min(tp / scored_inside * unscored, unblocked * joined) if scored_inside else 0.0
            f1_credited = 2 * (tp + credited) / (linked + expected_true) if linked + expected_true else 0.0
            # the credit in place of the lower bound: alone on mixed links, midway to the upper on deduplication
            f1 = f1_credited if duplicate_free else (f1_credited + f1_high) / 2
        insides.append(inside)
        f1s.append(f1)
        denominators.append(linked + expected_true)
        rows.append({"threshold": t, "linked_pairs": int(linked), "largest_cluster": int(sizes.max()) if n_nodes else 0,
                     "clusters_of_2": int((sizes == 2).sum()),
                     "clusters_of_3_to_5": int(((sizes >= 3) & (sizes <= 5)).sum()),
                     "clusters_over_5": int((sizes > 5).sum()),
                     "unscored_pairs_inside": int(unscored), "unscored_credited_true": round(credited, 1),
                     "expected_precision": round((tp + credited) / linked, 4) if linked else 1.0,
                     "expected_recall": round((tp + credited) / expected_true, 4) if expected_true else 0.0,
                     "expected_f1": round(f1, 4), "expected_f1_bounds": [round(f1_low, 4), round(f1_high, 4)]})
    if rows:
        top = max(range(len(rows)), key=lambda i: f1s[i])
        scale = 2 / denominators[top] if denominators[top] else 0.0
        for row, inside, f1 in zip(rows, insides, f1s, strict=True):
            sd = scale * math.sqrt(float(variance[inside != insides[top]].sum()))
            row["expected_f1_sd"] = round(sd, 7)
            row["expected_f1_gap"] = round(f1s[top] - f1, 7)
    return rows


#: How many standard deviations of the model's own noise make two thresholds' expected F1 a tie: two, the
#: usual "one time in twenty" (one was not enough on the benchmarks: docs/benchmarks.md, "Blocking recall in
#: the threshold choice").
TIE_SDS = 2.0


def choose_on_clusters(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The row of highest expected F1, except that rows whose gap to it is within :data:`TIE_SDS` of the
    noise of that difference (``expected_f1_sd``) are a tie: of the tied thresholds, the one nearest the
    middle of their range (between two equally near, the higher).

    Why: on a flat curve the argmax is decided by differences the model cannot resolve (on the benchmarks,
    0.0003-0.001 between 0.9 and 0.95), and a re-estimated prior or another key tips it either way. The tied
    thresholds are an interval the model cannot tell apart; its middle is the choice least moved by which end
    the noise favours. Breaking every tie towards the highest threshold was measured too: on twelve links (four
    datasets x two profiles x two keys) it lost 1.2 points on the messy set and 0.6 on FEBRL3 where the best
    threshold was the tie's lowest; the middle lost less in total and at worst no more (docs/benchmarks.md,
    "Blocking recall in the threshold choice"). Marks each row ``tied_with_best``."""
    if not rows:
        raise ValueError("no candidate thresholds")
    for row in rows:
        row["tied_with_best"] = bool(row.get("expected_f1_gap", 0.0) <= TIE_SDS * row.get("expected_f1_sd", 0.0))
    tied = [r for r in rows if r["tied_with_best"]]
    middle = (min(r["threshold"] for r in tied) + max(r["threshold"] for r in tied)) / 2
    # rounded: two thresholds equally far from the middle must compare equal despite float noise
    return min(tied, key=lambda r: (round(abs(r["threshold"] - middle), 9), -r["threshold"]))


def best_threshold(curve: list[dict[str, float]], low: float, high: float) -> float:
    """Threshold of highest expected F1, kept within [low, high] (ties go to the higher threshold)."""
    inside = [c for c in curve if low <= c["threshold"] <= high]
    if not inside:
        return high if not curve or curve[0]["threshold"] > high else low
    best = max(inside, key=lambda c: (round(c["expected_f1"], 9), c["threshold"]))
    return float(best["threshold"])


def sweep(curve: list[dict[str, float]], thresholds: list[float]) -> list[dict[str, float]]:
    """The curve read at given thresholds (the highest candidate at or above each)."""
    rows = []
    for t in thresholds:
        at = [c for c in curve if c["threshold"] >= t]
        c = at[-1] if at else {"pairs": 0, "expected_precision": 1.0, "expected_recall": 0.0, "expected_f1": 0.0}
        rows.append({"threshold": t, "pairs": int(c["pairs"]), "expected_precision": round(c["expected_precision"], 4),
                     "expected_recall": round(c["expected_recall"], 4), "expected_f1": round(c["expected_f1"], 4)})
    return rows


SWEEP_THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999]


def operating_point(histogram: list[tuple[float, int]], n_pairs: int, rule_prior: float, *,
                    reestimate_prior: bool, low: float, high: float, recall_at: Any = None) -> dict[str, Any]:
    """Prior, chosen threshold, the expected curve (compact) and a sweep table: what the manifest keeps.
    ``recall_at(prior)``, when given, is the blocking rules' estimated recall among matches (None: not
    estimable); the prior is then corrected for the matches no rule produced, and they join the expected
    matches the curve's recall is counted against."""
    recall: float | None = None
    if reestimate_prior and recall_at is not None:
        prior, iterations, recall = estimate_prior_with_recall(histogram, n_pairs, rule_prior, recall_at)
    elif reestimate_prior:
        prior, iterations = estimate_prior(histogram, n_pairs, rule_prior)
    else:
        prior, iterations = rule_prior, 0
    unblocked = prior * n_pairs * (1.0 - recall) if recall is not None else 0.0
    curve = expected_curve(histogram, prior, unblocked)
    threshold = best_threshold(curve, low, high)
    at = [c for c in curve if c["threshold"] >= threshold]
    chosen = at[-1] if at else None
    return {
        "rule_prior": rule_prior, "prior": prior, "prior_iterations": iterations, "comparable_pairs": n_pairs,
        "blocking_recall": None if recall is None else round(recall, 4),
        "expected_true_unblocked": round(unblocked, 1),
        "threshold": threshold,
        "expected_precision": round(chosen["expected_precision"], 4) if chosen else None,
        "expected_recall": round(chosen["expected_recall"], 4) if chosen else None,
        "expected_f1": round(chosen["expected_f1"], 4) if chosen else None,
        "expected_true_pairs": round(sum(n * prob_from_bits(logit2(prior) + b) for b, n in histogram), 1),
        "bayes_factor_histogram": {"bin_bits": BIN_BITS, "bits": [b for b, _ in histogram],
                                   "pairs": [n for _, n in histogram]},
        "sweep": sweep(curve, SWEEP_THRESHOLDS),
    }


def histogram_from_manifest(op: dict[str, Any]) -> list[tuple[float, int]]:
    h = op["bayes_factor_histogram"]
    return list(zip(h["bits"], h["pairs"], strict=True))


def reprice_predictions(con: duckdb.DuckDBPyConnection, predictions_table: str, old_prior: float,
                        new_prior: float) -> None:
    """Shift every scored pair's match weight by the change of prior log-odds and recompute its probability."""
    shift = logit2(new_prior) - logit2(old_prior)
    if shift == 0:
        return
    con.execute(f"UPDATE {predictions_table} SET match_weight = match_weight + ?, "
                "match_probability = 1.0 / (1.0 + pow(2.0, -(match_weight + ?)))", [shift, shift]).fetchall()


def choose_operating_point(con: duckdb.DuckDBPyConnection, predictions_table: str, rule_prior: float, config: Any,
                           identities: dict[str, int], link_type: str, dedupe: list[str],
                           rules: list[Any] | None = None, column_specs: dict[str, dict[str, Any]] | None = None,
                           identities_table: str = "_identities",
                           correct_for_blocking: bool | None = None) -> dict[str, Any]:
    """Run-time entry point: estimate the prior from pairs scored under ``rule_prior``, re-price them in place
    and return the operating point (``prior``, ``threshold`` fixed or chosen) for clustering and the manifest.

    With the blocking ``rules`` and the extracts' ``column_specs`` (manifest ``encodings.columns``), the prior
    is corrected for the matches the rules never produced (their recall among matches estimated from the
    scored pairs, see the section above :func:`rule_equalities`) when ``correct_for_blocking`` (default
    :data:`CORRECT_FOR_BLOCKING`). The caller carries the new prior into the model (``model.json``, the
    report's charts)."""
    settings = config.clustering
    reestimate = settings.prior == "from_scores"
    correct = CORRECT_FOR_BLOCKING if correct_for_blocking is None else correct_for_blocking
    structure = (blocking_structure(rules, column_specs) if (correct and reestimate and rules and column_specs)
                 else None)
    if structure is not None:
        present = {str(row[0]) for row in con.execute(f"DESCRIBE {identities_table}").fetchall()}
        if any(c not in present for rule in structure for pairs in rule.values() for pair in pairs for c in pair):
            structure = None  # a backend that kept no token columns: the uncorrected estimate
    recall_at = None
    if structure is not None:
        patterns = blocking_pattern_histogram(con, predictions_table, identities_table, structure, rule_prior)
        totals: dict[float, int] = {}
        for bits, n, _ in patterns:
            totals[bits] = totals.get(bits, 0) + n
        histogram = sorted(totals.items())

        def recall_at(prior: float) -> float:
            estimate = blocking_recall(patterns, structure, prior)
            return 1.0 if estimate is None else estimate
    else:
        histogram = weight_histogram(con, predictions_table, rule_prior)
    n_pairs = comparable_pairs(identities, link_type, dedupe)
    auto = settings.threshold_match_probability == "auto"
    op = operating_point(histogram, n_pairs, rule_prior, reestimate_prior=reestimate,
                         low=settings.auto_threshold_min, high=settings.auto_threshold_max, recall_at=recall_at)
    op["prior"] = float(f"{op['prior']:.9g}")
    if structure is not None:
        # The clustering counts record pairs: a record pair is missed only if none of its identity pairs was
        # blocked, so the threshold choice uses the recall over record pairs (the same under no aliases).
        by_record = blocking_pattern_histogram(con, predictions_table, identities_table, structure, rule_prior,
                                               per_record_pair=True)
        estimate = blocking_recall(by_record, structure, op["prior"])
        op["record_blocking_recall"] = None if estimate is None else round(estimate, 4)
    if op["prior"] != rule_prior:
        reprice_predictions(con, predictions_table, rule_prior, op["prior"])
    if not auto:
        op["threshold"] = float(settings.threshold_match_probability)
    op["threshold_source"] = "expected F1" if auto else "config"
    op["pairs_min_match_probability"] = config.pairs_min_match_probability
    return op


def scoring_floor(config: Any) -> float:
    """Probability (under the rule-based prior) down to which pairs are scored: low enough for the prior
    estimate when it is re-estimated, otherwise the configured floor for pairs.parquet."""
    floor = config.pairs_min_match_probability
    if config.clustering.prior == "from_scores":
        return min(floor, SCORING_FLOOR)
    return floor


# --- matches the blocking rules never produced ----------------------------------------------------------------
# The fixed point above counts only the pairs some blocking rule produced. A true pair that shares no blocking
# key (on messy data: a date and a postcode both missing or wrong) is never scored, so the estimate is the prior
# times the rules' recall among matches, R = P(blocked | match). With the unblocked pairs' likelihood kept (each
# is "some pair the rules did not produce", a near-certain non-match event for non-matches), the maximum-likelihood
# fixed point becomes lambda = sum_i p_i(lambda) / (N * R). R is estimated without labels from the scored pairs,
# under the Fellegi-Sunter model's own assumption: fields agree independently given a match.
#
# Each blocking column belongs to one *block* of fields: its salt's field when it is salted (a name token salted
# with the date of birth agrees only when the date does, so it belongs with the date), else its own field (the
# name fields form one block: given name and surname are not assumed independent). A rule's condition splits
# into one part per block. A block's joint agreement pattern among matches is read from the pairs that some rule
# *not* using that block produced (weighted by their match probability): under independence, being blocked on
# other fields says nothing about this one. R is the sum over the blocks' patterns of the product of their
# probabilities, where some rule holds.

MIN_BLOCKING_RECALL = 0.1   # below this the estimate is not believed (a sanity floor, never reached in benchmarks)
# On by default since the clusters' threshold choice credits the unblocked matches the clusters join and treats
# near-ties as ties (choose_on_clusters): docs/benchmarks.md, "The prior and the matches no blocking rule produced"
# and "Blocking recall in the threshold choice". choose_operating_point's ``correct_for_blocking=False`` turns it off.
CORRECT_FOR_BLOCKING = True
_RULE_EQUALITY = re.compile(r'l\."?(\w+)"?\s*=\s*r\."?(\w+)"?')


def rule_equalities(rule: Any) -> list[tuple[str, str]] | None:
    """(left column, right column) equalities of a blocking rule (a column list, or SQL of ``l.a = r.b`` terms
    joined by AND); None for SQL of any other form."""
    if isinstance(rule, list):
        return [(str(c), str(c)) for c in rule]
    text = str(rule)
    pairs = [(m.group(1), m.group(2)) for m in _RULE_EQUALITY.finditer(text)]
    rest = _RULE_EQUALITY.sub("", text).replace("(", " ").replace(")", " ").split()
    if not pairs or any(word.upper() != "AND" for word in rest):
        return None
    return pairs


def column_block(column: str, spec: dict[str, Any]) -> str:
    """The block of fields a token column's agreement depends on (see the section comment)."""
    encoding = str(spec.get("encoding", ""))
    if "+dob" in encoding or "salt-dob" in encoding or "near_dob" in encoding:
        return "date_of_birth"
    if "+postcode" in encoding or "salt-postcode" in encoding:
        return "postcode"
    field = str(spec.get("field", column.split("__")[0]))
    return "name" if field in ("given_name", "surname", "full_name", "name") else field


def blocking_structure(rules: list[Any], column_specs: dict[str, dict[str, Any]]
                       ) -> list[dict[str, list[tuple[str, str]]]] | None:
    """Each rule as {block: its equalities in that block}; None when some rule is not a conjunction of
    equalities of known columns (then the recall is not estimated)."""
    out = []
    for rule in rules:
        pairs = rule_equalities(rule)
        if pairs is None or any(a not in column_specs or b not in column_specs for a, b in pairs):
            return None
        parts: dict[str, list[tuple[str, str]]] = {}
        for a, b in pairs:
            parts.setdefault(column_block(a, column_specs[a]), []).append((a, b))
        out.append(parts)
    return out


def _agree_sql(pairs: list[tuple[str, str]], left: str, right: str) -> str:
    from linkage.contracts.names import is_token_list_column

    terms = []
    for a, b in pairs:
        if is_token_list_column(a) or is_token_list_column(b):
            terms.append(f'coalesce(list_has_any({left}."{a}", {right}."{b}"), false)')
        else:
            terms.append(f'coalesce({left}."{a}" = {right}."{b}", false)')
    return "(" + " AND ".join(terms) + ")"


def _holds_sql(pairs: list[tuple[str, str]]) -> str:
    """The equalities hold in either direction (Splink compares each unordered pair once)."""
    return f"({_agree_sql(pairs, 'l', 'r')} OR {_agree_sql(pairs, 'r', 'l')})"


def blocking_pattern_histogram(con: duckdb.DuckDBPyConnection, scored_table: str, identities_table: str,
                               structure: list[dict[str, list[tuple[str, str]]]], rule_prior: float,
                               per_record_pair: bool = False) -> list[tuple[float, int, tuple[bool, ...]]]:
    """(Bayes factor in bits, pairs, which rule-parts hold) over the scored pairs: each rule's part in each block,
    in the order of :func:`rule_parts`. ``per_record_pair``: one row per record pair (a record with aliases has
    several identities; the pair is blocked when any of theirs is), at its best identity pair's weight."""
    parts = rule_parts(structure)
    flags = ", ".join(f"{_holds_sql(structure[i][block])} AS f{k}" for k, (i, block) in enumerate(parts))
    names = ", ".join(f"f{k}" for k in range(len(parts)))
    inner = f"""SELECT s.match_weight AS w, s.record_id_l AS rl, s.record_id_r AS rr, {flags} FROM {scored_table} s
            JOIN {identities_table} l ON l.identity_id = s.identity_id_l
            JOIN {identities_table} r ON r.identity_id = s.identity_id_r WHERE s.match_weight IS NOT NULL"""
    if per_record_pair:
        any_flags = ", ".join(f"bool_or(f{k}) AS f{k}" for k in range(len(parts)))
        inner = f"""SELECT max(w) AS w, {any_flags} FROM ({inner})
            GROUP BY least(rl, rr), greatest(rl, rr)"""
    rows = con.execute(f"""SELECT round((w - ?) / {BIN_BITS}) AS b, count(*), {names} FROM ({inner})
        GROUP BY ALL""", [logit2(rule_prior)]).fetchall()
    return [(round(float(row[0]) * BIN_BITS, 4), int(row[1]), tuple(bool(v) for v in row[2:])) for row in rows]


def rule_parts(structure: list[dict[str, list[tuple[str, str]]]]) -> list[tuple[int, str]]:
    """(rule index, block) of every rule-part, in a fixed order."""
    return [(i, block) for i, rule in enumerate(structure) for block in sorted(rule)]


def blocking_recall(patterns: list[tuple[float, int, tuple[bool, ...]]],
                    structure: list[dict[str, list[tuple[str, str]]]], prior: float) -> float | None:
    """P(some rule holds | match) under independent blocks, from the scored pairs' rule-part patterns weighted
    by their match probability under ``prior``; None when some block is used by every rule (its failures
    are never seen), no evidence is left, or the blocks' patterns are too many to enumerate."""
    import numpy as np

    parts = rule_parts(structure)
    blocks = sorted({block for rule in structure for block in rule})
    offset = logit2(prior)
    flags = np.array([f for _, _, f in patterns], dtype=bool).reshape(len(patterns), len(parts))
    weights = np.array([n * prob_from_bits(offset + bits) for bits, n, _ in patterns], dtype=float)
    states_of: list[np.ndarray] = []     # per block: its observed patterns (states x own parts)
    probs_of: list[np.ndarray] = []      # per block: P(pattern | match)
    for block in blocks:
        own = [k for k, (_, b) in enumerate(parts) if b == block]
        others = [k for k, (i, _) in enumerate(parts) if block not in structure[i]]
        if not others:
            return None
        seen = flags[:, others].any(axis=1)
        if weights[seen].sum() <= 0:
            return None
        states, inverse = np.unique(flags[seen][:, own], axis=0, return_inverse=True)
        mass = np.bincount(inverse.ravel(), weights=weights[seen], minlength=len(states))
        states_of.append(states)
        probs_of.append(mass / mass.sum())
    shape = tuple(len(p) for p in probs_of)
    if math.prod(shape) > 20_000_000:
        return None
    blocked = np.zeros(shape, dtype=bool)
    for r, rule in enumerate(structure):
        holds = np.ones(shape, dtype=bool)
        for axis, block in enumerate(blocks):
            if block in rule:
                column = [k for k, (i, b) in enumerate(parts) if b == block].index(parts.index((r, block)))
                view = [1] * len(blocks)
                view[axis] = shape[axis]
                holds = holds & states_of[axis][:, column].reshape(view)
        blocked |= holds
    joint = np.ones(shape)
    for axis, probs in enumerate(probs_of):
        view = [1] * len(blocks)
        view[axis] = shape[axis]
        joint = joint * probs.reshape(view)
    recall = float(joint[blocked].sum())
    return max(min(recall, 1.0), MIN_BLOCKING_RECALL)


def estimate_prior_with_recall(histogram: list[tuple[float, int]], n_pairs: int, start: float,
                               recall_at: Any) -> tuple[float, int, float]:
    """Fixed point of lambda = sum p_i(lambda) / (N * R(lambda)), R from ``recall_at(lambda)`` (the recall
    estimate's weights move with the prior); returns (prior, iterations, recall)."""
    if n_pairs <= 0 or not histogram:
        return start, 0, 1.0
    lam = min(max(start, 1e-12), 0.5)
    recall = 1.0
    for i in range(1, MAX_ITERATIONS + 1):
        offset = logit2(lam)
        expected = sum(n * prob_from_bits(offset + bits) for bits, n in histogram)
        recall = recall_at(lam)
        new = min(max(expected / n_pairs / recall, 1e-12), 0.5)
        if abs(new - lam) <= 1e-7 * lam:
            return new, i, recall
        lam = new
    return lam, MAX_ITERATIONS, recall
