"""``report.html`` of the profile: each released table with its definition and a truthful chart.

Charts draw only released (rounded, non-withheld) values; rates name their denominators, shares carry
Wilson 95% intervals, and withheld cells are left out of charts (never drawn as zero).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from linkage.cohort.report import csv_frame
from linkage.profile.config import ProfileConfig
from linkage.profile.release import ProfileRelease
from linkage.report import HtmlReport, bar_chart

# Tile-map positions (column, row) of the Neighbourhood Policing Areas, roughly as they lie on a map.
NPA_TILES = {"Charnwood": (2, 0), "Melton & Rutland": (3, 0), "North West Leicestershire": (1, 0),
             "West Leicester": (1, 1), "Central Leicester": (2, 1), "East Leicester": (3, 1),
             "Hinckley & Blaby": (0, 2), "South Leicester": (2, 2), "Oadby & Wigston": (3, 2),
             "Harborough": (3, 3)}


def _num(rows: list[dict[str, Any]], col: str) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty or col not in df:
        return df
    ok = df[col].map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None)
    return df[ok].assign(**{col: df.loc[ok, col].astype(float)})


def _spec(values: pd.DataFrame, mark: Any, enc: dict, title: str, **extra: Any) -> dict:
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "title": title,
            "data": {"values": json.loads(values.to_json(orient="records"))}, "mark": mark, "encoding": enc,
            **extra}


def build_report(rel: ProfileRelease, cfg: ProfileConfig, paths: dict[str, str]) -> HtmlReport:
    sym = cfg.disclosure.symbol
    t = rel.tables
    rep = HtmlReport(title=cfg.label)
    rep.add_text(f"Serious violence = offence group '{cfg.serious_violence_group}' of {paths.get('offences')}; "
                 f"one occurrence per crime reference, dated by when it was committed, in {cfg.period.start} to "
                 f"{cfg.period.end}. Counts of 1-4 are withheld ('{sym}'), others rounded to the nearest "
                 f"{cfg.disclosure.rounding_base}; rates and percentages are computed from the released counts. "
                 "'z' = not applicable (no denominator).")
    rep.add_text("Denominators: " + paths.get("denominators", "ONS Census 2021 usual residents by district "
                                                               "(shipped, OGL v3)") + ".")
    rep.add_heading("Rates per 1,000 residents by area")
    area = _num([r for r in t["sv_by_area"] if r["level"] in ("LLR", "la", "district")], "rate_per_1000")
    if not area.empty:
        rep.add_chart(bar_chart(area[["area", "level", "rate_per_1000"]], "area", "rate_per_1000",
                                "Serious violence per 1,000 residents (period)", color="level", horizontal=True))
    rep.add_table(csv_frame(t["sv_by_area"], sym), caption="Rate = released occurrences / population x 1,000")
    _tile_map(rep, t["sv_by_area"], "share_pct", "Share of serious violence by NPA (%)")
    rep.add_heading("Offence groups")
    g = _num(t["offence_groups"], "share_pct")
    if not g.empty:
        rep.add_chart(bar_chart(g[["offence_group", "share_pct"]], "offence_group", "share_pct",
                                "Share of serious violence by offence group (%)", horizontal=True))
    rep.add_table(csv_frame(t["offence_groups"], sym))
    rep.add_heading("Flags: domestic, public place, sexual, knife; night-time economy")
    f = _num(t["flag_shares"], "pct")
    if not f.empty:
        enc = {"y": {"field": "measure", "type": "nominal"}, "x": {"field": "pct", "type": "quantitative"}}
        bars = {"mark": "bar", "encoding": enc}
        err = {"mark": "rule", "encoding": {"y": {"field": "measure", "type": "nominal"},
                                            "x": {"field": "ci_low", "type": "quantitative"},
                                            "x2": {"field": "ci_high"}}}
        rep.add_chart({"$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                       "title": "Shares (%) with 95% Wilson intervals",
                       "data": {"values": json.loads(f.to_json(orient="records"))}, "layer": [bars, err], "width": 500})
    rep.add_table(csv_frame(t["flag_shares"], sym))
    rep.add_heading("When: month, hour of day, weekday x hour")
    m = _num(t["by_month"], "occurrences")
    if not m.empty:
        rep.add_chart(_spec(m, {"type": "line", "point": True}, {"x": {"field": "month", "type": "ordinal"},
                                                                 "y": {"field": "occurrences", "type": "quantitative"}},
                            "Occurrences by month", width=600))
    h = _num(t["by_hour"], "under_25_involved")
    if not h.empty:
        rep.add_chart(bar_chart(h[["hour", "under_25_involved"]], "hour", "under_25_involved",
                                f"Occurrences with a victim or suspect aged {cfg.young_age_max} or under, by hour"))
    rep.add_table(csv_frame(t["by_hour"], sym))
    wh = _num(t["weekday_hour"], "occurrences")
    if not wh.empty:
        rep.add_chart(_spec(wh, "rect", {"x": {"field": "hour", "type": "ordinal"},
                                          "y": {"field": "weekday", "type": "nominal",
                                                "sort": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                                         "Saturday", "Sunday"]},
                                          "color": {"field": "occurrences", "type": "quantitative"}},
                            "Weekday x hour (withheld cells left blank)"))
    for kind, settings in (("nte", cfg.nte), ("after_school", cfg.after_school)):
        w = settings.window
        rep.add_heading(f"{settings.label} deep dive ({w.start_hour:02d}:00 to {(w.end_hour - 1) % 24:02d}:59)")
        rep.add_table(csv_frame(t[f"{kind}_deep_dive"], sym), max_rows=400)
    rep.add_heading(f"Knife-enabled serious violence with a suspect aged {cfg.young_age_max} or under")
    rep.add_text("Occurrences with the knife flag and at least one suspect/offender under 25: where, the "
                 "victim-offender relationship, and the under-25 suspects' sex and age.")
    rep.add_table(csv_frame(t["knife_u25_deep_dive"], sym), max_rows=400)
    if "ae_assault_attendances" in t:
        rep.add_heading("A&E assault attendances (health partner, ISTV extract)")
        rep.add_table(csv_frame(t["ae_assault_attendances"], sym), max_rows=200)
    rep.add_heading("Victims and perpetrators by age and sex")
    a = _num(t["age_sex_rates"], "rate_per_1000")
    if not a.empty:
        spec = bar_chart(a[["age_band", "sex", "role", "rate_per_1000"]], "age_band", "rate_per_1000",
                         "People involved per 1,000 residents of the age band and sex", color="sex")
        spec["encoding"]["xOffset"] = {"field": "sex"}
        spec["encoding"]["row"] = {"field": "role"}
        rep.add_chart(spec)
    rep.add_table(csv_frame(t["age_sex_rates"], sym))
    rep.add_heading("Year-on-year change")
    rep.add_table(csv_frame(t["year_on_year"], sym), caption=f"{cfg.previous_year.start}..{cfg.previous_year.end} "
                  f"against {cfg.current_year.start}..{cfg.current_year.end}; change only where the earlier count "
                  "is at least 10")
    if "area_ranking" in t:
        rep.add_heading("Where risk concentrates: young people with several risk factors")
        r = _num(t["area_ranking"], "rate_per_1000_young_people")
        if not r.empty:
            rep.add_chart(bar_chart(r[["area", "rate_per_1000_young_people"]].head(40), "area",
                                    "rate_per_1000_young_people", "Young people (10-24) with several education or "
                                    "social-care risk factors, per 1,000 young residents", horizontal=True))
        rep.add_table(csv_frame(t["area_ranking"], sym), caption="Ranked; denominators: young residents 10-24")
        rep.add_table(csv_frame(t["area_risk_factors"], sym), max_rows=600)
    rep.add_heading("Disclosure control log")
    rep.add_table(pd.DataFrame(rel.log.entries or [{"table": "", "rule": "none fired", "cells": 0}]))
    return rep


def _tile_map(rep: HtmlReport, rows: list[dict[str, Any]], value: str, title: str) -> None:
    df = _num([r for r in rows if r["level"] == "npa" and r["area"] in NPA_TILES], value)
    if df.empty:
        return
    df = df.assign(col=df["area"].map(lambda a: NPA_TILES[a][0]), row=df["area"].map(lambda a: NPA_TILES[a][1]))
    enc = {"x": {"field": "col", "type": "ordinal", "axis": None},
           "y": {"field": "row", "type": "ordinal", "axis": None}}
    rep.add_chart({"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "title": title,
                   "data": {"values": json.loads(df[["area", value, "col", "row"]].to_json(orient="records"))},
                   "width": 480, "height": 360, "encoding": enc,
                   "layer": [{"mark": "rect", "encoding": {"color": {"field": value, "type": "quantitative"},
                                                           "tooltip": [{"field": "area"}, {"field": value}]}},
                             {"mark": {"type": "text", "fontSize": 10}, "encoding": {"text": {"field": "area"}}}]},
                  caption="Tile map: one tile per Neighbourhood Policing Area, placed roughly as on a map.")
