"""The link report: Splink's model charts plus linkage rates, cluster sizes and chain-guard flags.

Everything shown is counts, weights and parameters; no token or record id appears, so the report can be
read by anyone at the VRN who checks a job.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd
from splink import Linker
from splink.internals.charts import WaterfallChart
from splink.internals.waterfall_chart import records_to_waterfall_data

from linkage.link.cluster import run_sql
from linkage.link.config import LinkConfig
from linkage.report import HtmlReport, bar_chart


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


def build_report(linker: Linker, predictions: Any, con: duckdb.DuckDBPyConnection, manifest: dict[str, Any],
                 summary: dict[str, Any], config: LinkConfig) -> HtmlReport:
    report = HtmlReport(title="Linkage report")
    counts, guards = manifest["counts"], manifest["chain_guards"]
    report.add_heading("Job")
    one_to_one = ", ".join(manifest["one_to_one_sources"]) or "none"
    deduplicated = ", ".join(manifest["deduplicated_sources"]) or "none"
    report.add_text(f"Project {manifest['project_id']}, key check value {manifest['kcv']}, link type "
                    f"{manifest['link_type']}; one-to-one sources: {one_to_one}; deduplicated sources: {deduplicated}.")
    inputs = pd.DataFrame([{"source": i["source"], "records": counts["records"].get(i["source"], 0),
                            "identity rows": counts["identities"].get(i["source"], 0),
                            "one person per id": i["one_person_per_id"]} for i in manifest["inputs"]])
    report.add_table(inputs, caption="Inputs")
    stages = pd.DataFrame([{"stage": k, "count": v} for k, v in counts.items() if isinstance(v, int)])
    report.add_table(stages, caption="Counts per stage")

    report.add_heading("Chain guards")
    report.add_text(f"{guards['clusters_with_conflicting_identifiers']} persons hold two different trusted "
                    f"identifiers ({', '.join(guards['trusted_identifiers_checked']) or 'none available'}); "
                    f"{guards['clusters_over_size_limit']} persons exceed {guards['max_cluster_size']} records. "
                    "Review these before release: each is a likely false merge.")

    report.add_heading("Model")
    fixed = manifest["training"]["untrained_levels_fixed"]
    report.add_text(f"Prior match probability and u from random sampling (seed {config.training.seed}); m by EM "
                    f"over: {'; '.join(manifest['training']['em_rules'])}. Levels never observed in training and "
                    f"given a safe m ({config.training.unobserved_level_m}): {', '.join(fixed) or 'none'}.")
    report.add_chart(linker.visualisations.match_weights_chart().chart_dict, caption="Match weights per level")
    report.add_chart(linker.visualisations.m_u_parameters_chart().chart_dict, caption="m and u parameters")

    if manifest.get("blocking"):
        plan = pd.DataFrame(manifest["blocking"])
        skipped = int((~plan.used).sum())
        report.add_text(f"Prediction blocking: {int(plan.used.sum())} rules run, {skipped} skipped as over the "
                        f"budget of {config.blocking_budget_pairs_per_identity} estimated pairs per identity row.")
        report.add_table(plan, caption="Blocking rules: estimated pairs (upper bound) and whether each ran")

    report.add_heading("Scores")
    report.add_chart(linker.visualisations.match_weights_histogram(predictions).chart_dict,
                     caption="Match-weight histogram of scored pairs")
    waterfall = _waterfall(linker, con, predictions, config.waterfall_samples)
    if waterfall is not None:
        report.add_chart(waterfall, caption="Waterfall of sample pairs across the weight range (no values shown)")

    report.add_heading("Persons")
    sizes = summary["sizes"].assign(n_records=lambda d: d.n_records.astype(str))
    report.add_chart(bar_chart(sizes, "n_records", "persons", "Records per person (cluster size)"),
                     caption=f"Threshold match probability {config.clustering.threshold_match_probability}")
    rates = summary["rates"]
    report.add_chart(bar_chart(rates, "source", "rate", "Share of records linked to each source",
                               color="linked_to"), caption="Within one source: share in a deduplicated person")
    report.add_table(rates, caption="Linkage rates per source pair")
    report.add_chart(bar_chart(summary["unlinked"], "source", "unlinked_share", "Unlinked share per source"))
    timings = manifest.get("timings_seconds") or {}
    if timings:
        report.add_table(pd.DataFrame([{"phase": k, "seconds": v} for k, v in timings.items()]), caption="Timings")
    from linkage.link.recluster import add_operating_point_section  # i13: threshold section

    add_operating_point_section(report, manifest.get("operating_point") or {})
    return report
