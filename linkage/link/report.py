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

from linkage.link.config import LinkConfig
from linkage.report import HtmlReport, bar_chart


def linkage_summary(con: duckdb.DuckDBPyConnection, sources: list[str]) -> dict[str, Any]:
    """Cluster sizes, pairwise source linkage rates and unlinked shares from ``_crosswalk``."""
    sizes = con.execute("""SELECT n_records, count(*) AS persons FROM
        (SELECT person_id, count(*) AS n_records FROM _crosswalk GROUP BY person_id)
        GROUP BY n_records ORDER BY n_records""").df()
    # For each record of source a: does its person also hold a record of source b?
    person_sources = con.execute("SELECT DISTINCT person_id, source FROM _crosswalk").df()
    per_record = con.execute("SELECT person_id, source FROM _crosswalk").df()
    rates = []
    for a in sources:
        recs = per_record[per_record.source == a]
        for b in sources:
            has_b = set(person_sources.loc[person_sources.source == b, "person_id"])
            if a == b:
                # within a source: records sharing their person with another record of the same source
                dup = recs.groupby("person_id").size()
                linked = int(dup[dup > 1].sum())
            else:
                linked = int(recs.person_id.isin(has_b).sum())
            rates.append({"source": a, "linked_to": b, "records": len(recs), "linked": linked,
                          "rate": round(linked / len(recs), 4) if len(recs) else 0.0})
    sizes_by_person = per_record.groupby("person_id").size()
    unlinked = []
    for a in sources:
        recs = per_record[per_record.source == a]
        alone = int((sizes_by_person.loc[recs.person_id] == 1).sum()) if len(recs) else 0
        unlinked.append({"source": a, "records": len(recs), "unlinked": alone,
                         "unlinked_share": round(alone / len(recs), 4) if len(recs) else 0.0})
    n_sources = person_sources.groupby("person_id").size()
    counts = {"persons": int(per_record.person_id.nunique()),
              "persons_in_two_or_more_sources": int((n_sources >= 2).sum()),
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
    return report
