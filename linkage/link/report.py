"""The link report: Splink's model charts plus linkage rates, cluster sizes and chain-guard flags.

Everything shown is counts, weights and parameters; no token or record id appears, so the report can be
read by anyone at the VRN who checks a job.
"""

from __future__ import annotations

import ast
import html
import math
from typing import Any

import duckdb
import pandas as pd
from splink import Linker
from splink.internals.charts import WaterfallChart
from splink.internals.waterfall_chart import records_to_waterfall_data

from linkage.graph import spanning_forest
from linkage.link.cluster import resolved_threshold, run_sql
from linkage.link.config import LinkConfig
from linkage.report import HtmlReport, count_chart, human_label, share_chart


def linkage_summary(con: duckdb.DuckDBPyConnection, sources: list[str]) -> dict[str, Any]:
    """Cluster sizes, pairwise source linkage rates and unlinked shares from ``_crosswalk``.

    In SQL over one row per (person, source): a 1M-person crosswalk stays in DuckDB instead of pandas.
    """
    run_sql(con, """CREATE OR REPLACE TEMP TABLE _person_sources AS
        SELECT person_id, source, count(*) AS n FROM _crosswalk GROUP BY person_id, source""")
    run_sql(con, """CREATE OR REPLACE TEMP TABLE _person_sizes AS
        SELECT person_id, sum(n)::BIGINT AS n_records, count(*) AS n_sources FROM _person_sources GROUP BY person_id""")
    sizes = con.execute("""SELECT n_records, count(*) AS persons FROM _person_sizes
        GROUP BY n_records ORDER BY n_records""").df()
    # A record of source a is linked to source b when its person also holds a b record (for b = a: another
    # record of the same source, i.e. a duplicate found).
    linked = {(a, b): int(n) for a, b, n in con.execute("""
        SELECT x.source, y.source, sum(x.n) FILTER (WHERE x.source <> y.source OR x.n > 1)
        FROM _person_sources x JOIN _person_sources y USING (person_id) GROUP BY ALL""").fetchall() if n}
    per_source = dict(con.execute("SELECT source, sum(n)::BIGINT FROM _person_sources GROUP BY source").fetchall())
    alone = dict(con.execute("""SELECT ps.source, count(*) FROM _person_sources ps JOIN _person_sizes s
        USING (person_id) WHERE s.n_records = 1 GROUP BY ps.source""").fetchall())
    rates, unlinked = [], []
    for a in sources:
        n_a = int(per_source.get(a, 0))
        for b in sources:
            n = linked.get((a, b), 0)
            rates.append({"source": a, "linked_to": b, "records": n_a, "linked": n,
                          "rate": round(n / n_a, 4) if n_a else 0.0})
        n_alone = int(alone.get(a, 0))
        unlinked.append({"source": a, "records": n_a, "unlinked": n_alone,
                         "unlinked_share": round(n_alone / n_a, 4) if n_a else 0.0})
    persons, multi = con.execute("SELECT count(*), count(*) FILTER (WHERE n_sources >= 2) FROM _person_sizes"
                                 ).fetchall()[0]
    counts = {"persons": int(persons), "persons_in_two_or_more_sources": int(multi),
              "largest_cluster": int(sizes.n_records.max()) if len(sizes) else 0}
    return {"sizes": sizes, "rates": pd.DataFrame(rates), "unlinked": pd.DataFrame(unlinked), "counts": counts}


def _waterfall(linker: Linker, con: duckdb.DuckDBPyConnection, predictions: Any, n: int) -> dict | None:
    """Waterfall of n pairs spread evenly over the match-weight range (weights only, no values).

    Predictions keep match weights but not comparison levels (keeping them would copy every token into
    the pairs table), so the levels of the few sampled pairs are recomputed here from the tokens.
    """
    if n <= 0:
        return None
    comparisons = linker._settings_obj.comparisons
    token_cols = sorted({ic.unquote().name for c in comparisons for ic in c._input_columns_used_by_case_statement})
    sides = ", ".join(f'{side}."{col}" AS "{col}_{side}"' for col in token_cols for side in ("l", "r"))
    cases = ", ".join(c._case_statement for c in comparisons)
    df = con.execute(f"""
        WITH ranked AS (SELECT *, ntile({n}) OVER (ORDER BY match_weight, identity_id_l, identity_id_r) AS bucket
                        FROM {predictions.physical_name}),
        sample AS (SELECT * EXCLUDE (bucket) FROM ranked
                   QUALIFY row_number() OVER (PARTITION BY bucket ORDER BY match_weight, identity_id_l) = 1),
        joined AS (SELECT s.*, {sides} FROM sample s JOIN _identities l ON l.identity_id = s.identity_id_l
                   JOIN _identities r ON r.identity_id = s.identity_id_r)
        SELECT match_weight, match_probability, {cases}, COLUMNS('^mw_') FROM joined
        ORDER BY match_weight DESC""").df()
    if df.empty:
        return None
    data = records_to_waterfall_data(df.to_dict(orient="records"), linker._settings_obj, True)
    return WaterfallChart(data, True).chart_dict


def chain_guard_review(con: duckdb.DuckDBPyConnection, threshold: float) -> pd.DataFrame:
    """Flagged persons ranked by the model's probability that the cluster holds at least one false merge.

    A cluster is held together by its strongest record edges; the chance that all of them are true
    matches is taken as the product of the match probabilities along the maximum spanning tree of its
    edges at or above the threshold (the weakest necessary links decide). One minus that product is the
    estimated probability of a false merge. Flags from identifier conflicts are often data errors in
    the identifier rather than wrong links, which is why a flag alone is not a verdict.
    """
    flags = con.execute("SELECT person_id, n_records, identifier_conflict, oversized FROM _flags").df()
    if flags.empty:
        return flags.assign(sources="", weakest_link=pd.Series(dtype=float), p_false_merge=pd.Series(dtype=float))
    edges = con.execute("""
        SELECT a.person_id, e.node_id_l, e.node_id_r, e.match_probability
        FROM _edges e JOIN _crosswalk a ON a.record_id = e.node_id_l JOIN _crosswalk b ON b.record_id = e.node_id_r
        WHERE a.person_id = b.person_id AND e.match_probability >= ?
          AND a.person_id IN (SELECT person_id FROM _flags)""", [threshold]).df()
    sources = dict(con.execute("""SELECT person_id, string_agg(DISTINCT source, ', ' ORDER BY source)
        FROM _crosswalk WHERE person_id IN (SELECT person_id FROM _flags) GROUP BY person_id""").fetchall())
    weakest: dict[str, float] = {}
    p_true: dict[str, float] = {}
    for person, group in edges.sort_values("match_probability", ascending=False).groupby("person_id", sort=False):
        probs = group.match_probability.to_numpy(dtype=float)
        tree = probs[spanning_forest(zip(group.node_id_l, group.node_id_r, strict=True))]  # strongest links
        p_true[str(person)], weakest[str(person)] = float(tree.prod()), float(min(tree, default=1.0))
    flags["sources"] = flags.person_id.map(sources).fillna("")
    flags["weakest_link"] = flags.person_id.map(weakest)
    flags["p_false_merge"] = 1 - flags.person_id.map(p_true)
    return flags.sort_values(["p_false_merge", "n_records"], ascending=False, na_position="last").reset_index(drop=True)


def _threshold_histogram(chart: dict[str, Any], threshold: float) -> dict[str, Any]:
    """Splink's match-weight histogram with the clustering threshold drawn as a labelled rule."""
    weight = math.log2(threshold / (1 - threshold))
    spec = dict(chart)
    data = spec.pop("data")
    top: dict[str, Any] = {k: spec.pop(k) for k in ("$schema", "title", "config") if k in spec}
    rule = {"mark": {"type": "rule", "color": "#c00", "strokeWidth": 2},
            "encoding": {"x": {"datum": weight, "type": "quantitative"}}}
    label = {"mark": {"type": "text", "color": "#c00", "align": "left", "dx": 4, "baseline": "top", "y": 4},
             "encoding": {"x": {"datum": weight, "type": "quantitative"},
                          "text": {"value": f"threshold p = {threshold:g} (weight {weight:.1f})"}}}
    return {**top, "data": data, "layer": [spec, rule, label]}


def _plain(value: Any) -> str:
    """A list (or a list's repr, as older manifests stored EM rules) as comma-separated words."""
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def build_report(linker: Linker, predictions: Any, con: duckdb.DuckDBPyConnection, manifest: dict[str, Any],
                 summary: dict[str, Any], config: LinkConfig) -> HtmlReport:
    report = HtmlReport(title="Linkage report")
    counts, guards = manifest["counts"], manifest["chain_guards"]
    # the threshold clustering used: the operating point's choice under 'auto', else the configured one
    threshold = float((manifest.get("operating_point") or {}).get("threshold")
                      or resolved_threshold(config.clustering))
    report.add_heading("Job")
    one_to_one = ", ".join(manifest["one_to_one_sources"]) or "none"
    deduplicated = ", ".join(manifest["deduplicated_sources"]) or "none"
    report.add_text(f"Project {manifest['project_id']}, key check value {manifest['kcv']}, link type "
                    f"{manifest['link_type']}; one-to-one sources: {one_to_one}; deduplicated sources: {deduplicated}.")
    inputs = pd.DataFrame([{"source": i["source"], "records": counts["records"].get(i["source"], 0),
                            "identifier sets": counts["identities"].get(i["source"], 0),
                            "one person per id": i["one_person_per_id"]} for i in manifest["inputs"]])
    report.add_table(inputs, caption="Inputs")
    stage_labels = {"pairs_scored": "pairs scored (above the minimum kept probability)",
                    "pairs_at_threshold": f"pairs at or above the threshold p = {threshold:g}",
                    "record_edges": "record pairs (best pair of identifier sets)", "persons": "persons",
                    "persons_in_two_or_more_sources": "persons in two or more sources",
                    "largest_cluster": "records in the largest person", "score_chunks": "scoring chunks"}
    stages = pd.DataFrame([{"stage": stage_labels.get(k, human_label(k)), "count": v}
                           for k, v in counts.items() if isinstance(v, int)])
    report.add_table(stages, caption="Counts per stage")

    report.add_heading("Chain guards")
    review = chain_guard_review(con, threshold)
    n_flagged = len(review)
    report.add_text(f"{guards['clusters_with_conflicting_identifiers']:,} persons hold two different trusted "
                    f"identifiers ({', '.join(guards['trusted_identifiers_checked']) or 'none available'}); "
                    f"{guards['clusters_over_size_limit']:,} persons exceed {guards['max_cluster_size']} records.")
    if n_flagged:
        known = review.p_false_merge.dropna()
        expected = float(known.sum())
        likely = int((known >= 0.5).sum())
        report.add_html(
            "<p class='note'>" + html.escape(
                f"A flag asks for review; it is not a verdict. From the model's match probabilities, about "
                f"{expected:,.1f} of the {n_flagged:,} flagged persons ({100 * expected / n_flagged:.1f}%) are "
                f"expected to hold a false merge, and {likely:,} have a probability of 50% or more. The rest are "
                "more likely one person whose trusted identifier was mistyped or reissued. Review from the top "
                "of the ranked list.") + "</p>")
        report.add_table(review.head(50), caption="Flagged persons, most likely false merge first (first 50). "
                         "Probability of a false merge = 1 - product of the match probabilities of the strongest "
                         "links that hold the person together; weakest link = the lowest of those.",
                         labels={"person_id": "person id", "n_records": "records",
                                 "identifier_conflict": "trusted identifiers differ",
                                 "oversized": f"over {guards['max_cluster_size']} records",
                                 "weakest_link": "weakest link",
                                 "p_false_merge": "probability of a false merge", "sources": "sources"},
                         percent=["p_false_merge", "weakest_link"])
    else:
        report.add_text("No person was flagged.")

    report.add_heading("Model")
    fixed = manifest["training"]["untrained_levels_fixed"]
    em_rules = "; ".join(_plain(r) for r in manifest["training"]["em_rules"])
    report.add_text(f"Prior match probability and u from random sampling (seed {config.training.seed}); m by EM "
                    f"over: {em_rules}. Levels never observed in training and given a safe m "
                    f"({config.training.unobserved_level_m}): {', '.join(map(_plain, fixed)) or 'none'}.")
    report.add_chart(linker.visualisations.match_weights_chart().chart_dict, caption="Match weights per level")
    report.add_chart(linker.visualisations.m_u_parameters_chart().chart_dict, caption="m and u parameters")

    if manifest.get("blocking"):
        plan = pd.DataFrame(manifest["blocking"])
        skipped = int((~plan.used).sum())
        report.add_text(f"Prediction blocking: {int(plan.used.sum())} rules run, {skipped} skipped as over the "
                        f"budget of {config.blocking_budget_pairs_per_identity} estimated pairs per identity row.")
        plan = plan.assign(**{c: plan[c].map(_plain) for c in plan.columns if plan[c].dtype == object})
        report.add_table(plan, caption="Blocking rules: estimated pairs per identity row (upper bound) and whether "
                         "each ran", labels={"used": "ran"})

    report.add_heading("Scores")
    histogram = linker.visualisations.match_weights_histogram(predictions).chart_dict
    report.add_chart(_threshold_histogram(histogram, threshold),
                     caption="Match-weight histogram of scored pairs; the red line is the clustering threshold "
                             "(pairs to its right link records)")
    waterfall = _waterfall(linker, con, predictions, config.waterfall_samples)
    if waterfall is not None:
        report.add_chart(waterfall, caption="Waterfall of sample pairs across the weight range (no values shown)")

    report.add_heading("Persons")
    report.add_chart(count_chart(summary["sizes"], "n_records", "persons",
                                 "Persons by number of records (denominator: all persons)",
                                 x_title="records per person", y_title="persons"),
                     caption=f"Log scale, so the few large clusters stay visible. Threshold match probability "
                             f"{threshold:g}.")
    rates = summary["rates"]
    report.add_chart(share_chart(rates, "source", "linked", "records",
                                 "Share of each source's records whose person also has a record in another source "
                                 "(denominator: all records of the source on the left)",
                                 group="linked_to", interval=False),
                     caption="Bars side by side, one per other source (they overlap, so they do not add up). "
                             "Against its own source: the share in a person with a second record there "
                             "(duplicates found).")
    report.add_table(rates, caption="Linkage per source pair", percent=["rate"],
                     labels={"source": "source", "linked_to": "linked to", "records": "records of the source",
                             "linked": "records linked", "rate": "share linked"})
    report.add_chart(share_chart(summary["unlinked"], "source", "unlinked", "records",
                                 "Share of each source's records in a person of one record (denominator: all "
                                 "records of the source)", interval=False))
    timings = manifest.get("timings_seconds") or {}
    if timings:
        report.add_table(pd.DataFrame([{"phase": k, "seconds": v} for k, v in timings.items()]), caption="Timings")
    from linkage.link.recluster import add_operating_point_section  # i13: threshold section

    add_operating_point_section(report, manifest.get("operating_point") or {})
    return report
