"""The audit report: Markdown, self-contained HTML and JSON, written atomically.

Only rates and counts appear: never a token, a filter or a re-identified value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from linkage.io import atomic_output_dir, write_json
from linkage.report import HtmlReport, bar_chart


def md_table(df: pd.DataFrame) -> str:
    """A Markdown pipe table (no extra dependency)."""
    rows = [list(df.columns), ["---"] * len(df.columns)] + df.astype(str).values.tolist()
    return "\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in rows)


def _pct(x: float | None) -> str:
    return "not verified" if x is None else f"{100 * x:.1f}%"


COLUMN_NOTE = ("records re-identified: share of the records holding a value in that column whose value the "
               "attack named correctly (checked with the key at the partner). Only rates are shown: no token, "
               "filter or name.")


def column_table(result: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{
        "column": r["column"], "encoding": r["encoding"], "attack": r["attack"],
        "records": r["records_with_value"], "distinct values": r["distinct_values"],
        "largest value share": _pct(r["top_value_share"]), "values guessed": r["values_guessed"],
        "values re-identified": "" if r["values_reidentified"] is None else r["values_reidentified"],
        "records re-identified": _pct(r["records_reidentified_share"]),
    } for r in result["columns"]])


SUITE_NOTE = ("attack suite: frequency alignment conditioned on co-released tokens and list sizes, Bloom-filter "
              "similarity clustering with pattern mining, row-order inference (threat model, section 2). Row "
              "order counts only what position gives beyond chance; a Bloom attack within postcode or year groups "
              "only what it gives beyond guessing each group's commonest name.")


def attack_table(result: dict[str, Any]) -> pd.DataFrame:
    from linkage.audit.suite import risk_of

    return pd.DataFrame([{
        "partner": a["partner"], "column": a["column"], "encoding": a["encoding"], "attack": a["attack"],
        "records": a["records_with_value"], "records re-identified": _pct(a["records_reidentified_share"]),
        "chance": (_pct(a["chance_share"]) if "chance_share" in a
                   else _pct(a["baseline_share"]) if "baseline_share" in a else ""),
        "counted by the gate": _pct(risk_of(a)),
    } for a in result.get("attacks") or []])


def uniqueness_table(result: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{"combination": u["combination"], "records": u["records"],
                          "unique (k=1)": _pct(u["unique_share"]), "k < 5": _pct(u["k_below_5_share"]),
                          "median k": u["median_k"]} for u in result["uniqueness"]])


def verdict(result: dict[str, Any]) -> str:
    if result["max_risk"] is None:
        return f"Highest verified re-identification share: {_pct(result['risk'])} (no threshold set)."
    state = "PASS" if result["passed"] else "FAIL"
    return (f"{state}: highest verified re-identification share {_pct(result['risk'])} against a "
            f"threshold of {_pct(result['max_risk'])}.")


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Privacy audit: {result['source']}", "", verdict(result), "",
             f"{result['records']} records (one identifier set each); reference: {result['reference']}; "
             f"attacks verified with the key: {'yes' if result['verified'] else 'no'}.", "",
             "## Attacks per column", "", md_table(column_table(result)), "", COLUMN_NOTE, "",
             "## Attack suite", "",
             md_table(attack_table(result)) if result.get("attacks") else "(not run: needs a verified audit "
             "with the worst-case or an independent population reference)", "", SUITE_NOTE, "",
             "## Uniqueness of token combinations", "",
             md_table(uniqueness_table(result)) if result["uniqueness"] else "(no combination)",
             ""]
    return "\n".join(lines)


def write_report(result: dict[str, Any], out_dir: str | Path) -> None:
    with atomic_output_dir(out_dir) as tmp:
        write_json(tmp / "audit.json", result)
        (tmp / "audit.md").write_text(markdown(result), encoding="utf-8")
        html = HtmlReport(f"Privacy audit: {result['source']}")
        html.add_text(verdict(result))
        html.add_text(f"{result['records']} records; reference: {result['reference']}; attacks verified "
                      f"with the key: {'yes' if result['verified'] else 'no'}.")
        html.add_heading("Attacks per column")
        html.add_table(column_table(result), caption=COLUMN_NOTE)
        chart = pd.DataFrame([{"column": r["column"], "share": r["records_reidentified_share"] or 0.0}
                              for r in result["columns"]])
        if result["verified"] and len(chart):
            html.add_chart(bar_chart(chart, "column", "share", "Share of records re-identified", horizontal=True))
        if result.get("attacks"):
            html.add_heading("Attack suite")
            html.add_table(attack_table(result), caption=SUITE_NOTE)
        html.add_heading("Uniqueness of token combinations")
        html.add_table(uniqueness_table(result))
        html.write(tmp / "audit.html")
