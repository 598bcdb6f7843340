"""Writing a cohort release: CSV + Parquet tables, ``report.html`` with charts, ``manifest.json``.

Suppressed cells show the configured symbol (default ``c``) in CSV and HTML and are null in Parquet,
where a ``withheld`` column names the suppressed columns of each row; ``z`` marks "not applicable".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from linkage.cohort.config import DisclosureSettings
from linkage.cohort.tables import ALL, WITHHELD, Release
from linkage.errors import LinkageInputError
from linkage.report import HtmlReport, bar_chart

NOT_APPLICABLE = "z"
# A cell starting with one of these is a formula to Excel / LibreOffice / Google Sheets (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")

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


def escape_text(value: str) -> str:
    """Neutralise spreadsheet formulas: a leading quote makes the cell text (OWASP's CSV-injection advice)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def csv_frame(rows: list[dict[str, Any]], symbol: str) -> pd.DataFrame:
    def cell(v: Any) -> Any:
        if isinstance(v, str):
            return escape_text(v)
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


def check_code_lists(release: Release) -> None:
    """Every category value of every table must come from a config code list, never from free text."""
    for name, rows in release.tables.items():
        for i, row in enumerate(rows):
            for column, allowed in release.code_lists.items():
                if column in row and row[column] is not None and row[column] not in allowed:
                    raise LinkageInputError(f"release refused: a category value is not in the config's code list "
                                            f"(table {name}, row {i + 1})", field=column)


def write_tables(release: Release, out: Path, symbol: str) -> list[str]:
    check_code_lists(release)
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


def rules_text(settings: DisclosureSettings) -> str:
    s = settings
    return (f"Counts of {s.suppress_min}-{s.suppress_max} are withheld (shown as '{s.symbol}'), other counts are "
            f"rounded to the nearest {s.rounding_base}, and further cells are withheld where totals would reveal "
            "a withheld one; 'z' means not applicable. Percentages, intervals and means are computed from the "
            f"released (rounded) counts and shown only for at least {s.stat_min_contributors} people.")


def build_report(release: Release, title: str, notes: list[str], settings: DisclosureSettings) -> HtmlReport:
    symbol = settings.symbol
    rep = HtmlReport(title=title)
    rep.add_text("De-identified tables for researchers. " + rules_text(settings) + " Figures come from "
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


def checker_pack(release: Release, settings: DisclosureSettings, intruder: dict[str, Any], notes: list[str]) -> str:
    """``output_checker.md``: what a TRE output checker needs to sign the release off, in one page.

    It names each table, the rules and settings applied (and any logged override of the floor), how
    often each rule fired per table, and the intruder's aggregate verdict. Per-cell intervals stay in the
    VRN-internal disclosure log: they would tell a researcher which withheld cells are primary.
    """
    lines = ["# Output-checker pack", "", "## Tables", ""]
    for name, rows in release.tables.items():
        if rows:
            lines.append(f"- `{name}` ({len(rows)} rows): {DESCRIPTIONS.get(name, '')}")
    lines += ["", "## Rules applied", "", rules_text(settings),
              "Secondary suppression covers every structural relation of the tables (sub-groups partition the "
              "cohort, bands partition people, linked <= cohort, factor <= denominator and its complement, "
              "sums behind means, characteristics known from one source only). No minimum or maximum is "
              "released; medians are order statistics of the banded distributions shown.", "",
              "| setting | value |", "|---|---|"]
    for key, value in settings.model_dump(mode="json").items():
        if key not in ("area_codes", "risk_accepted"):
            lines.append(f"| {key} | {value} |")
    weak = settings.weakenings()
    if weak:
        acc = settings.risk_accepted
        lines += ["", f"**Override of the shipped floor**: {'; '.join(weak)}. Risk accepted by "
                      f"{acc.accepted_by if acc else '?'}: {acc.reason if acc else ''}"]
    lines += ["", "## Rules fired", "", "| table | rule | cells |", "|---|---|---|"]
    lines += [f"| {e['table']} | {e['rule']} | {e['cells']} |" for e in release.log.entries]
    lines += ["", "## Intruder check (before release)", "",
              "An integer-programming intruder (scipy HiGHS `milp`) was given every table of this release and "
              "the documented rules, and computed the feasible interval of every withheld, rounded and "
              "complementary count. The release is refused if a count whose true value is "
              f"{settings.suppress_min}-{settings.suppress_max} can be narrowed to fewer than "
              f"{settings.rounding_base} values.", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in intruder.items()]
    lines += ["", "## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)
