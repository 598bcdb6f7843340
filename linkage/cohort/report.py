"""Writing a cohort release: CSV + Parquet tables, ``report.html`` with charts, ``manifest.json``.

Suppressed cells show the configured symbol (default ``c``) in CSV and HTML and are null in Parquet,
where a ``withheld`` column names the suppressed columns of each row; ``z`` marks "not applicable".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from linkage.cohort.tables import ALL, WITHHELD, Release
from linkage.report import HtmlReport, bar_chart

NOT_APPLICABLE = "z"

DESCRIPTIONS = {
    "cohort_summary": "People, mean/median risk factors (overall and per domain), prior offences and "
                      "prior victimisation, for the whole cohort and each sub-group.",
    "factor_prevalence": "Per factor: people with it, denominator (cohort members linked to a source that "
                         "can show it), % and 95% Wilson interval.",
    "factor_count_distribution": "People by banded number of individual and close-relationship factors.",
    "prior_offence_distribution": "People by banded number of distinct prior offences (suspect/offender).",
    "linkage_coverage": "Cohort members with at least one linked record in each source.",
    "coverage_by_characteristic": "Linkage coverage by ethnic group, area (NPA) and age band where known.",
    "person_level": "One row per person (k-anonymous): random research id, coarse attributes, factor flags.",
}


def csv_frame(rows: list[dict[str, Any]], symbol: str) -> pd.DataFrame:
    def cell(v: Any) -> Any:
        return symbol if v is WITHHELD else (NOT_APPLICABLE if v is None else v)

    # Map before building the frame: pandas would turn None into NaN and lose "not applicable".
    return pd.DataFrame([{k: cell(v) for k, v in r.items()} for r in rows])


def parquet_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = list(rows[0])
    out = pd.DataFrame([{k: (None if v is WITHHELD else v) for k, v in r.items()} for r in rows],
                       columns=columns)
    for col in out.columns:
        values = [r[col] for r in rows]
        if all(v is None or v is WITHHELD or isinstance(v, (int, float)) for v in values):
            out[col] = pd.to_numeric(out[col])
    out["withheld"] = [";".join(c for c in columns if r[c] is WITHHELD) for r in rows]
    return out


def write_tables(release: Release, out: Path, symbol: str) -> list[str]:
    written = []
    for name, rows in release.tables.items():
        if not rows:
            continue
        csv_frame(rows, symbol).to_csv(out / f"{name}.csv", index=False)
        parquet_frame(rows).to_parquet(out / f"{name}.parquet", index=False)
        written += [f"{name}.csv", f"{name}.parquet"]
    return written


def _numeric_rows(rows: list[dict[str, Any]], value: str) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    keep = df[value].map(lambda v: isinstance(v, (int, float)) and v is not None)
    return df[keep].assign(**{value: df.loc[keep, value].astype(float)})


def build_report(release: Release, title: str, notes: list[str], symbol: str) -> HtmlReport:
    rep = HtmlReport(title=title)
    rep.add_text("De-identified tables for researchers. Counts of 1-4 are withheld (shown as "
                 f"'{symbol}'), other counts are rounded to the nearest 5, and further cells are withheld "
                 "where totals would reveal a withheld one; 'z' means not applicable. Figures come from "
                 "the linked police, education and social-care records of the cohort.")
    for note in notes:
        rep.add_text(note)
    rep.add_heading("Cohort summary")
    rep.add_table(csv_frame(release.tables["cohort_summary"], symbol))
    prev = release.tables["factor_prevalence"]
    all_rows = _numeric_rows([r for r in prev if r["group"] == ALL], "pct")
    if not all_rows.empty:
        rep.add_heading("Risk-factor prevalence by domain")
        rep.add_chart(bar_chart(all_rows[["label", "domain", "pct"]], "label", "pct",
                                "Share of the cohort with each risk factor (%)", color="domain",
                                horizontal=True), caption="Withheld and 'no data' factors are not drawn.")
    rep.add_table(csv_frame(prev, symbol), caption="Factor prevalence (all groups)", max_rows=400)
    dist = _numeric_rows(release.tables["factor_count_distribution"], "people")
    if not dist.empty:
        rep.add_heading("Distribution of risk-factor counts")
        rep.add_chart(bar_chart(dist[dist["group"] == ALL][["band", "people"]], "band", "people",
                                "People by number of risk factors"))
    rep.add_table(csv_frame(release.tables["factor_count_distribution"], symbol))
    sub = _numeric_rows([r for r in prev if r["group"] != ALL], "pct")
    means = _numeric_rows(release.tables["cohort_summary"], "mean_factors")
    if not sub.empty or len(means) > 1:
        rep.add_heading("Sub-group comparison")
    if len(means) > 1:
        rep.add_chart(bar_chart(means[["group_label", "mean_factors"]], "group_label", "mean_factors",
                                "Mean number of risk factors per person"))
    if not sub.empty:
        spec = bar_chart(sub[["label", "group_label", "pct"]], "label", "pct",
                         "Risk-factor prevalence by sub-group (%)", color="group_label")
        spec["encoding"]["xOffset"] = {"field": "group_label"}
        rep.add_chart(spec)
    rep.add_heading("Prior offending")
    rep.add_table(csv_frame(release.tables["prior_offence_distribution"], symbol))
    rep.add_heading("Linkage coverage")
    cov = _numeric_rows(release.tables["linkage_coverage"], "pct_linked")
    if not cov.empty:
        rep.add_chart(bar_chart(cov[["source", "group_label", "pct_linked"]], "source", "pct_linked",
                                "Cohort members linked to each source (%)", color="group_label"))
    rep.add_table(csv_frame(release.tables["linkage_coverage"], symbol))
    chars = _numeric_rows(release.tables["coverage_by_characteristic"], "pct_linked")
    if not chars.empty:
        for dim in chars["characteristic"].unique():
            part = chars[chars["characteristic"] == dim]
            rep.add_chart(bar_chart(part[["category", "source", "pct_linked"]], "category", "pct_linked",
                                    f"Linkage coverage by {dim.replace('_', ' ')} (%)", color="source"))
    if release.tables["coverage_by_characteristic"]:
        rep.add_table(csv_frame(release.tables["coverage_by_characteristic"], symbol))
    rep.add_heading("Disclosure control log")
    rep.add_table(pd.DataFrame(release.log.entries or [{"table": "", "rule": "none fired", "cells": 0}]))
    return rep
