"""``recluster``: a new crosswalk from an existing link folder's scored pairs at another threshold.

Scoring is the expensive part of a link; clustering is not. The link folder keeps every pair scored at or
above ``pairs_min_match_probability`` (pairs.parquet, probabilities already under the link's final prior)
and the Bayes-factor histogram of the operating point (manifest.json), so a new threshold, fixed or
'auto', needs neither the tokens nor the model. The clustering code is the one ``linkage link`` runs,
so the partition equals a full rerun's at the same threshold.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd

from linkage.errors import LinkageConfigError, LinkageInputError
from linkage.io import PhaseTimer, atomic_output_dir, check_output_dir, write_json
from linkage.link.cluster import chain_guards, cluster_into_persons, run_sql
from linkage.link.config import ClusterSettings
from linkage.link.sql import string
from linkage.link.threshold import (
    curve_from_probabilities,
    expected_curve,
    histogram_from_manifest,
    logit2,
    prob_from_bits,
    sweep,
)
from linkage.report import HtmlReport, bar_chart


def _read_link(link_dir: Path) -> dict[str, Any]:
    for name in ("manifest.json", "pairs.parquet", "crosswalk.parquet"):
        if not (link_dir / name).is_file():
            raise LinkageInputError(f"{link_dir / name}: missing (not a link folder from `linkage link`)")
    manifest = json.loads((link_dir / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("kind") != "link":
        raise LinkageInputError(f"{link_dir / 'manifest.json'}: field kind: not a link manifest")
    return manifest


def recluster(link_dir: str | Path, out_dir: str | Path, threshold: float | Literal["auto"],
              *, quiet: bool = False) -> dict[str, Any]:
    """Cluster a link folder's scored pairs at ``threshold`` into a new link folder (crosswalk, manifest,
    report; pairs.parquet copied so the new folder can be re-clustered in turn). Returns its manifest."""
    link_dir = Path(link_dir)
    if threshold != "auto" and not 0 < float(threshold) < 1:
        raise LinkageConfigError(f"--threshold must be 'auto' or a probability between 0 and 1, got {threshold}")
    manifest = _read_link(link_dir)
    check_output_dir(out_dir)
    settings = ClusterSettings.model_validate(
        {**manifest["config"]["clustering"], "threshold_match_probability": threshold})
    op = dict(manifest.get("operating_point") or {})
    min_kept = float(manifest["config"].get("pairs_min_match_probability", 0.0))
    if threshold == "auto" and not op.get("bayes_factor_histogram"):
        raise LinkageInputError(f"{link_dir / 'manifest.json'}: no operating_point histogram; give a number")
    if threshold != "auto" and float(threshold) < min_kept:
        raise LinkageConfigError(f"--threshold {threshold} is below the lowest probability kept in pairs.parquet "
                                 f"({min_kept}); rerun `linkage link` with a lower pairs_min_match_probability")
    timer = PhaseTimer(echo=not quiet)
    inputs = manifest["inputs"]
    aliases = {i["source"]: f"s{n}" for n, i in enumerate(inputs)}
    with duckdb.connect() as con:
        pairs = string(str(link_dir / "pairs.parquet"))
        crosswalk = string(str(link_dir / "crosswalk.parquet"))
        with timer.phase("cluster into persons"):
            run_sql(con, f"CREATE TABLE _pairs AS SELECT record_id_l, record_id_r, match_probability "
                         f"FROM read_parquet({pairs})")
            run_sql(con, f"CREATE TABLE _records AS SELECT DISTINCT record_id, source FROM read_parquet({crosswalk}) "
                         "ORDER BY record_id")
            fixed = None if threshold == "auto" else float(threshold)
            value = cluster_into_persons(con, settings, aliases, manifest.get("one_to_one_sources", []), fixed, op)
            # Trusted-identifier conflicts need the tokens, which a re-cluster does not read: size only.
            run_sql(con, "CREATE TABLE _no_identities AS SELECT record_id FROM _records")
            guards = chain_guards(con, "_no_identities", settings.model_copy(update={"trusted_identifiers": []}),
                                  set())
            sizes = con.execute("""SELECT n_records, count(*) AS persons FROM (SELECT person_id, count(*) AS n_records
                FROM _crosswalk GROUP BY person_id) GROUP BY n_records ORDER BY n_records""").df()
        with atomic_output_dir(out_dir) as tmp:
            run_sql(con, f"COPY (SELECT person_id, source, record_id FROM _crosswalk ORDER BY person_id, source, "
                         f"record_id) TO {string(str(tmp / 'crosswalk.parquet'))} (FORMAT parquet)")
            run_sql(con, f"COPY (SELECT * FROM read_parquet({pairs})) TO {string(str(tmp / 'pairs.parquet'))} "
                         "(FORMAT parquet)")
            out = {**manifest, "reclustered_from": str(link_dir),
                   "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                   "config": {**manifest["config"], "clustering": settings.model_dump(mode="json")},
                   "chain_guards": guards}
            out["operating_point"] = {**op, "threshold": value,
                                      "threshold_source": "expected F1" if threshold == "auto" else "re-cluster"}
            out["counts"] = {**manifest.get("counts", {}), "persons": int(sizes.persons.sum()),
                             "largest_cluster": int(sizes.n_records.max()) if len(sizes) else 0}
            out["timings_seconds"] = dict(timer.timings)
            report = HtmlReport(title="Re-clustered link")
            report.add_text(f"Re-clustered from {link_dir.name} at threshold {value:.4g} "
                            f"({out['operating_point']['threshold_source']}); scores are unchanged.")
            add_operating_point_section(report, out["operating_point"])
            report.add_chart(bar_chart(sizes.assign(n_records=lambda d: d.n_records.astype(str)), "n_records",
                                       "persons", "Records per person (cluster size)"),
                             caption=f"Threshold match probability {value:.4g}")
            report.write(tmp / "report.html")
            write_json(tmp / "manifest.json", out)
    return out


def add_operating_point_section(report: HtmlReport, op: dict[str, Any]) -> None:
    """Report section: the prior, the chosen threshold on the Bayes-factor histogram, the expected
    precision/recall curve it came from and a sweep table. Counts and probabilities only."""
    if not op or not op.get("bayes_factor_histogram"):
        return
    report.add_heading("Operating point (threshold)")
    threshold = float(op["threshold"])
    report.add_text(
        f"Prior match probability {op['prior']:.3g} (rule-based estimate {op['rule_prior']:.3g}; re-estimated "
        f"from the scored pairs over {op['comparable_pairs']:,} comparable pairs). Threshold {threshold:.4g} "
        f"({op.get('threshold_source', '')}). Expected among the scored pairs at that threshold: precision "
        f"{op.get('expected_precision')}, recall {op.get('expected_recall')}, F1 {op.get('expected_f1')}. "
        "These are the model's own estimates, not measured against truth: they are as good as its calibration, "
        "and pairs no blocking rule produced are outside them.")
    hist = histogram_from_manifest(op)
    offset = logit2(op["prior"])
    df = pd.DataFrame([{"match_weight": round(b + offset, 1), "pairs": n} for b, n in hist])
    df["match_weight"] = df.match_weight.round(0)
    df = df.groupby("match_weight", as_index=False).agg(pairs=("pairs", "sum"))
    cut = logit2(min(max(threshold, 1e-12), 1 - 1e-12))
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Scored pairs by match weight, with the chosen threshold",
        "layer": [
            {"data": {"values": df.to_dict(orient="records")}, "mark": "bar",
             "encoding": {"x": {"field": "match_weight", "type": "quantitative", "title": "match weight (bits)"},
                          "y": {"field": "pairs", "type": "quantitative", "scale": {"type": "symlog"},
                                "title": "scored pairs (symlog scale)"}}},
            {"data": {"values": [{"cut": cut}]}, "mark": {"type": "rule", "color": "red", "strokeWidth": 2},
             "encoding": {"x": {"field": "cut", "type": "quantitative"}}},
        ],
        "width": 600, "height": 240}
    report.add_chart(spec, caption=f"Red line: threshold {threshold:.4g} = match weight {cut:.1f} bits")
    edges = op.get("edge_probability_histogram")
    if edges:  # the curve the threshold was chosen on: clustered record edges (after one-to-one re-weighting)
        floor = op.get("pairs_min_match_probability", 0)
        below = sum(n * p for b, n in hist if (p := prob_from_bits(offset + b)) < floor)
        curve = curve_from_probabilities(list(zip(edges["probability"], edges["pairs"], strict=True)), below)
    else:
        curve = expected_curve(hist, op["prior"])
    points = [{"threshold": c["threshold"], "measure": m, "value": c[f"expected_{m}"]}
              for c in curve[:: max(1, len(curve) // 200)] for m in ("precision", "recall", "f1")]
    report.add_chart({
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Expected precision / recall / F1 by threshold (model's estimate)",
        "data": {"values": points}, "mark": "line",
        "encoding": {"x": {"field": "threshold", "type": "quantitative", "title": "match probability threshold"},
                     "y": {"field": "value", "type": "quantitative", "scale": {"domain": [0, 1]}},
                     "color": {"field": "measure", "type": "nominal"}},
        "width": 600, "height": 240}, caption="Denominator: expected true pairs among the scored pairs")
    if op.get("cluster_sweep"):
        report.add_table(pd.DataFrame(op["cluster_sweep"]),
                         caption="Clusters per threshold (connected components): record pairs linked, largest cluster, "
                                 "cluster sizes and expected F1 (midpoint of the bounds given by unscored pairs inside "
                                 "a cluster). The threshold was chosen here")
    report.add_table(pd.DataFrame(sweep(curve, [0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 0.999] + [threshold])
                                  ).drop_duplicates("threshold").sort_values("threshold"),
                     caption="Sweep: expected pairs linked, precision, recall and F1 per threshold "
                             "(try one with `linkage cluster --link DIR --threshold X --out NEW`)")
