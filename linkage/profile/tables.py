"""The profile's tables: figures (``figures.py``) registered and released through ``release.py``.

Each ``_section`` registers its counts and returns a renderer; renderers run only after the whole
release was protected, so suppression sees every relation between tables before anything is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from linkage.cohort.tables import WITHHELD
from linkage.profile.config import ProfileConfig
from linkage.profile.denominators import district_to_la, population_by
from linkage.profile.figures import UNKNOWN, WEEKDAYS, age_band_of, in_period, involvements
from linkage.profile.release import ProfileRelease

Renderer = Callable[[], None]
TOTAL = ("sv", "total")
LLR_LABEL = "Leicester, Leicestershire and Rutland"
DEEP_AGE_BANDS = [(0, 11), (12, 15), (16, 17), (18, 21), (22, 24), (25, 34), (35, 49), (50, 120)]
DEEP_AGE_BANDS_LABELS = [f"{lo}-{hi}" if hi < 120 else f"{lo}+" for lo, hi in DEEP_AGE_BANDS]


def _counts(series: pd.Series, order: list | None = None) -> pd.Series:
    c = series.value_counts(dropna=False)
    if order is not None:
        c = c.reindex(order, fill_value=0)
    return c.sort_index() if order is None else c


def build_profile_tables(occ_all: pd.DataFrame, police: pd.DataFrame, cfg: ProfileConfig, den: pd.DataFrame,
                         rel: ProfileRelease, area_section: Callable[[ProfileRelease], Renderer] | None = None,
                         health: pd.DataFrame | None = None) -> ProfileRelease:
    occ = occ_all[in_period(occ_all["ts"], cfg.period)].reset_index(drop=True)
    rel.populations["occurrences|period"] = occ["crime_ref"].astype(str).tolist()
    for when, period in (("current", cfg.current_year), ("previous", cfg.previous_year)):
        rel.populations[f"occurrences|{when}_year"] = occ_all.loc[in_period(occ_all["ts"], period),
                                                                  "crime_ref"].astype(str).tolist()
    renderers: list[Renderer] = []
    rel.count(TOTAL, len(occ))
    renderers += [_areas(occ, cfg, den, rel), _groups(occ, cfg, rel), _flags(occ, cfg, rel), _time(occ, rel),
                  _deep_dive("nte", occ, police, cfg, rel), _deep_dive("after_school", occ, police, cfg, rel),
                  _deep_dive("knife_u25", occ, police, cfg, rel), _health(health, cfg, rel),
                  _age_sex(occ, police, cfg, den, rel), _year_on_year(occ_all, cfg, rel)]
    if area_section is not None:
        renderers.append(area_section(rel))
    _same_numbers(occ, cfg, rel)
    rel.code_lists = code_lists(cfg, den)
    rel.protect()
    for render in renderers:
        render()
    rel.check_code_lists()  # before the (slower) intruder: a payload value in a category fails fast
    withheld = dict(rel.reg.suppressed)
    rel.check()
    if rel.reg.suppressed != withheld:  # the intruder's repair withheld more: render again
        for render in renderers:
            render()
    rel.finish_log()
    return rel


def code_lists(cfg: ProfileConfig, den: pd.DataFrame) -> dict[str, set[str]]:
    """Category values the profile's tables may show: the config's code lists, the taxonomy's groups,
    fixed calendar labels, and the areas of the VRN's own denominator file; never a payload's free text."""
    cl = cfg.code_lists
    areas = {*cl.areas.local_authorities, *cl.areas.districts(), *cl.areas.npas, UNKNOWN, LLR_LABEL}
    for level in ("sector", "district", "npa", "la"):
        if level in den.columns:
            areas |= set(den[level].astype(str))
    groups = {*cfg.offence_groups, "other"}
    calendar = {*WEEKDAYS, *(f"{h:02d}:00" for h in range(24)), *(f"{m:02d}" for m in range(1, 13))}
    bands = {*DEEP_AGE_BANDS_LABELS, "M", "F"}
    yoy = {f"{label}: {when}" for label in ("attendances", "admissions")
           for when in ("previous year", "current year", "change %")}
    category = (groups | cl.areas.districts() | set(cl.relationships) | calendar | bands | set(cl.ae_locations)
                | set(cl.ae_means) | set(cl.ae_admitted) | yoy | {UNKNOWN, "occurrences", "attendances"})
    return {"area": areas, "category": category, "offence_group": groups}


def _areas(occ: pd.DataFrame, cfg: ProfileConfig, den: pd.DataFrame, rel: ProfileRelease) -> Renderer:
    la_of = district_to_la(den)
    district = occ["district"]
    la = district.map(lambda d: la_of.get(d, UNKNOWN))
    d_keys = rel.breakdown(("sv", "district"), _counts(district), TOTAL)
    la_counts = _counts(la)
    la_keys = rel.breakdown(("sv", "la"), la_counts, TOTAL)
    for lname in la_counts.index:  # each LA is the sum of its districts
        parts = [("sv", "district", d) for d in district[la == lname].unique()]
        rel.constrain(("sv", "la", str(lname)), parts)
    npa_keys = rel.breakdown(("sv", "npa"), _counts(occ["npa"]), TOTAL)
    # The code lists' nesting is public: tie NPAs to the districts they cover, LAs to their districts.
    values = rel.reg.values
    for npas, dists in cfg.code_lists.areas.npa_groups():
        rel.public_relation(("npa", *npas), [k for n in npas if (k := ("sv", "npa", n)) in values],
                            [k for d in dists if (k := ("sv", "district", d)) in values])
    for lname, dists in cfg.code_lists.areas.local_authorities.items():
        if ("sv", "la", lname) in values:
            rel.public_relation(("la", lname), [("sv", "la", lname)],
                                [k for d in dists if (k := ("sv", "district", d)) in values])
    pops = {"district": population_by(den, "district"), "la": population_by(den, "la"),
            "npa": population_by(den, "npa")}
    total_pop = float(pops["district"].sum()) if len(pops["district"]) else None

    def render() -> None:
        rows: list[dict[str, Any]] = [{"level": "LLR", "area": LLR_LABEL,
                                       "occurrences": rel.value(TOTAL), "population": total_pop,
                                       "rate_per_1000": rel.rate(TOTAL, total_pop), "share_pct": 100.0}]
        for level, keys in (("la", la_keys), ("district", d_keys), ("npa", npa_keys)):
            for k in keys:
                pop = pops[level].get(k[-1]) if k[-1] in pops[level].index else None
                rows.append({"level": level, "area": k[-1], "occurrences": rel.value(k),
                             "population": None if pop is None else int(pop),
                             "rate_per_1000": rel.rate(k, pop), "share_pct": rel.pct(k, TOTAL)})
        rel.add_table("sv_by_area", rows, {TOTAL, *la_keys, *d_keys, *npa_keys})
    return render


def _groups(occ: pd.DataFrame, cfg: ProfileConfig, rel: ProfileRelease) -> Renderer:
    keys = rel.breakdown(("sv", "group"), _counts(occ["offence_group"]), TOTAL)

    def render() -> None:
        rel.add_table("offence_groups", [{"offence_group": k[-1], "occurrences": rel.value(k),
                                          "share_pct": rel.pct(k, TOTAL)} for k in keys], {TOTAL, *keys})
    return render


def _flags(occ: pd.DataFrame, cfg: ProfileConfig, rel: ProfileRelease) -> Renderer:
    specs: list[tuple[str, str, Any, Any]] = []   # (measure, definition, key, denominator key)
    for f in cfg.flags:
        key = ("sv", "flag", f)
        rel.share(key, int(occ[f"flag_{f}"].sum()), TOTAL)
        specs.append((f, f"share of serious violence flagged '{f}'", key, TOTAL))
    nte_key = ("sv", "flag", "nte")
    rel.share(nte_key, int(occ["nte"].sum()), TOTAL)
    specs.append(("nte", "night-time economy (22:00-04:59 in a public place or hospitality) share of all", nte_key,
                  TOTAL))
    pub = ("sv", "public_total")
    rel.share(pub, int(occ["public"].sum()), TOTAL)
    knife_col = occ["flag_knife"] if "flag_knife" in occ else pd.Series(False, index=occ.index)
    for name, mask, label in (("nte_of_public", occ["nte"] & occ["public"], "NTE share of public-place violence"),
                              ("knife_of_public", occ["public"] & knife_col, "knife share of public-place violence")):
        if name == "knife_of_public" and "flag_knife" not in occ:
            continue
        key = ("sv", "public", name)
        rel.share(key, int(mask.sum()), pub)
        specs.append((name, label, key, pub))
    if "flag_knife" in occ:
        knife = ("sv", "flag", "knife")
        city = ("sv", "knife", "in_leicester_city")
        rel.share(city, int((occ["flag_knife"] & (occ["district"] == "Leicester")).sum()), knife)
        specs.append(("knife_in_leicester_city", "share of knife-enabled violence in Leicester City", city, knife))

    def render() -> None:
        rows = []
        for measure, definition, key, den in specs:
            lo, hi = rel.ci(key, den)
            rows.append({"measure": measure, "definition": definition, "occurrences": rel.value(key),
                         "denominator": rel.value(den), "pct": rel.pct(key, den), "ci_low": lo, "ci_high": hi})
        rel.add_table("flag_shares", rows, {TOTAL, *(s[2] for s in specs), *(s[3] for s in specs)})
    return render


def _time(occ: pd.DataFrame, rel: ProfileRelease) -> Renderer:
    month = occ["ts"].dt.strftime("%Y-%m")
    m_keys = rel.breakdown(("sv", "month"), _counts(month), TOTAL)
    hours = list(range(24))
    h_keys = rel.breakdown(("sv", "hour"), _counts(occ["hour"], hours), TOTAL)
    young_total = ("sv", "young_total")
    rel.share(young_total, int(occ["young_involved"].sum()), TOTAL)
    y_keys = rel.breakdown(("sv", "young_hour"), _counts(occ.loc[occ["young_involved"], "hour"], hours), young_total)
    wd_keys = rel.breakdown(("sv", "weekday"), _counts(occ["weekday"], list(range(7))), TOTAL)
    grid = pd.crosstab(occ["weekday"], occ["hour"]).reindex(index=range(7), columns=hours, fill_value=0)
    cell_keys = {}
    for w in range(7):
        row = grid.iloc[w]  # index is 0-6 in order
        ks = rel.breakdown(("sv", "wd_hour", str(w)), row, ("sv", "weekday", str(w)))
        cell_keys[w] = ks
    for h in hours:
        rel.constrain(("sv", "hour", str(h)), [cell_keys[w][h] for w in range(7)])

    def render() -> None:
        rel.add_table("by_month", [{"month": k[-1], "occurrences": rel.value(k), "share_pct": rel.pct(k, TOTAL)}
                                   for k in m_keys], {TOTAL, *m_keys})
        rel.add_table("by_hour", [{"hour": f"{int(k[-1]):02d}:00-{int(k[-1]):02d}:59", "all_occurrences": rel.value(k),
                                   "under_25_involved": rel.value(y), "under_25_share_pct": rel.pct(y, young_total)}
                                  for k, y in zip(h_keys, y_keys, strict=True)], {*h_keys, *y_keys, young_total})
        rows = []
        for w in range(7):
            for h, k in zip(hours, cell_keys[w], strict=True):
                rows.append({"weekday": WEEKDAYS[w], "hour": h, "occurrences": rel.value(k)})
        rel.add_table("weekday_hour", rows, {k for ks in cell_keys.values() for k in ks} | set(wd_keys))
    return render


def _deep_dive(kind: str, occ: pd.DataFrame, police: pd.DataFrame, cfg: ProfileConfig,
               rel: ProfileRelease) -> Renderer:
    sub = occ[occ[kind]]
    total = ("dd", kind, "total")
    rel.share(total, len(sub), TOTAL)
    dims: list[tuple[str, pd.Series, list | None]] = [
        ("offence_group", sub["offence_group"], None),
        *([("district", sub["district"], None), ("relationship", sub["relationship"], None)]
          if kind == "knife_u25" else []),
        ("weekday", sub["weekday"].map(lambda w: WEEKDAYS[w]), list(WEEKDAYS)),
        # the after-school window is one hour: an hour breakdown would only repeat the total
        *([("hour", sub["hour"].map(lambda h: f"{h:02d}:00"), None)] if kind != "after_school" else []),
    ]
    sections: list[tuple[str, list, Any]] = []
    for dim, values, order in dims:
        keys = rel.breakdown(("dd", kind, dim), _counts(values, order), total)
        sections.append((dim, keys, total))
    # month of the year over the 12 months of `current_year` (a longer period would count some months twice)
    year = sub[in_period(sub["ts"], cfg.current_year)]
    year_total = ("dd", kind, "current_year_total")
    rel.count(year_total, len(year))
    keys = rel.breakdown(("dd", kind, "month_of_current_year"),
                         _counts(year["ts"].dt.month.map(lambda m: f"{m:02d}"), [f"{m:02d}" for m in range(1, 13)]),
                         year_total)
    sections.append(("month_of_current_year", keys, year_total))
    for role, roles in (("victim", cfg.victim_roles), ("suspect", cfg.police.offender_roles)):
        inv = involvements(police, sub["crime_ref"], cfg, roles)
        if kind == "knife_u25" and role == "suspect":  # the cohort's perpetrators: the under-25s only
            inv = inv[inv["age"] <= cfg.young_age_max]
        inv_total = ("dd", kind, role, "total")
        rel.count(inv_total, len(inv))
        for dim, values in (("sex", inv["sex"]), ("age_band", _age_bands_deep(inv["age"]))):
            keys = rel.breakdown(("dd", kind, role, dim), _counts(values), inv_total)
            sections.append((f"{role}_{dim}", keys, inv_total))

    def render() -> None:
        rows = [{"dimension": "all", "category": "occurrences", "count": rel.value(total),
                 "pct": rel.pct(total, TOTAL)}]
        keys: set = {total, TOTAL}
        for dim, ks, den in sections:
            keys |= {*ks, den}
            rows += [{"dimension": dim, "category": k[-1], "count": rel.value(k), "pct": rel.pct(k, den)} for k in ks]
        rel.add_table(f"{kind}_deep_dive", rows, keys)
    return render


def _age_bands_deep(age: pd.Series) -> pd.Series:
    out = pd.Series(UNKNOWN, index=age.index, dtype="string")
    for lo, hi in DEEP_AGE_BANDS:
        out = out.mask((age >= lo) & (age <= hi), f"{lo}-{hi}" if hi < 120 else f"{lo}+")
    return out


def _age_sex(occ: pd.DataFrame, police: pd.DataFrame, cfg: ProfileConfig, den: pd.DataFrame,
             rel: ProfileRelease) -> Renderer:
    has_age_sex = "age_band" in den.columns and "sex" in den.columns
    labels = sorted(den["age_band"].unique(), key=lambda s: int(s.rstrip("+").split("-")[0])) if has_age_sex else [
        "0-17", "18-24", "25-34", "35-49", "50-64", "65+"]
    pop = den.groupby(["age_band", "sex"])["population"].sum() if has_age_sex else None
    out: list[tuple[str, str, str, Any]] = []
    for role, roles in (("victim", cfg.victim_roles), ("perpetrator", cfg.police.offender_roles)):
        inv = involvements(police, occ["crime_ref"], cfg, roles)
        band = age_band_of(inv["age"], labels)
        tot = ("agesex", role, "total")
        rel.count(tot, len(inv))
        cells = pd.DataFrame({"band": band, "sex": inv["sex"]}).value_counts().sort_index().reset_index(name="n")
        keys = [rel.count(("agesex", role, str(b), str(sx)), int(n))
                for b, sx, n in cells.itertuples(index=False, name=None)]
        rel.constrain(tot, keys)
        for k in keys:
            out.append((role, k[2], k[3], k))

    def render() -> None:
        rows = []
        for role, b, sx, k in sorted(out, key=lambda t: (t[0], t[1], t[2])):
            p = float(pop.get((b, sx), 0)) if pop is not None else None
            rows.append({"role": role, "age_band": b, "sex": sx, "people_involved": rel.value(k),
                         "population": p, "rate_per_1000": rel.rate(k, p or None),
                         "share_pct": rel.pct(k, ("agesex", role, "total"))})
        rel.add_table("age_sex_rates", rows, {t[3] for t in out} | {("agesex", r, "total") for r in
                                                                   ("victim", "perpetrator")})
    return render


def _year_on_year(occ_all: pd.DataFrame, cfg: ProfileConfig, rel: ProfileRelease) -> Renderer:
    cur = occ_all[in_period(occ_all["ts"], cfg.current_year)]
    prev = occ_all[in_period(occ_all["ts"], cfg.previous_year)]
    specs = []
    for label, c, p in [("all serious violence", cur, prev)] + [
            (g, cur[cur["offence_group"] == g], prev[prev["offence_group"] == g]) for g in cfg.offence_groups]:
        kc, kp = ("yoy", "current", label), ("yoy", "previous", label)
        rel.count(kc, len(c))
        rel.count(kp, len(p))
        specs.append((label, kc, kp))
    groups_c = [s[1] for s in specs[1:]]
    groups_p = [s[2] for s in specs[1:]]
    other_c, other_p = ("yoy", "current", "_other"), ("yoy", "previous", "_other")
    rel.count(other_c, len(cur) - sum(rel.reg.values[k] for k in groups_c), hidden=True)
    rel.count(other_p, len(prev) - sum(rel.reg.values[k] for k in groups_p), hidden=True)
    rel.constrain(specs[0][1], [*groups_c, other_c])
    rel.constrain(specs[0][2], [*groups_p, other_p])

    def render() -> None:
        rows = []
        for label, kc, kp in specs:
            c, p = rel.value(kc), rel.value(kp)
            if isinstance(c, int) and isinstance(p, int):
                change: Any = round(100.0 * (c - p) / p, 1) if p >= 10 else None
            else:
                change = WITHHELD
            rows.append({"measure": label, "previous_year": p, "current_year": c, "change_pct": change})
        rel.add_table("year_on_year", rows, {k for s in specs for k in s[1:]})
    return render


def _health(health: pd.DataFrame | None, cfg: ProfileConfig, rel: ProfileRelease) -> Renderer:
    """A&E assault attendances (ISTV extract) in the period, and year on year, when a health extract is linked."""
    hc = cfg.health
    if health is None or hc.arrival not in health.columns:
        return lambda: None
    ts = pd.to_datetime(health[hc.arrival], errors="coerce")
    in_p = health[in_period(ts, cfg.period)]
    total = ("ae", "total")
    rel.count(total, len(in_p))
    sections: list[tuple[str, list, Any]] = []
    for dim, col in (("location_of_assault", hc.location), ("means_of_assault", hc.means), ("admitted", hc.admitted)):
        if col in in_p.columns:
            values = in_p[col].astype("string").str.strip().str.upper().fillna(UNKNOWN).replace("", UNKNOWN)
            sections.append((dim, rel.breakdown(("ae", dim), _counts(values), total), total))
    if hc.age in in_p.columns:
        age = pd.to_numeric(in_p[hc.age], errors="coerce")  # same bands as the deep dives
        sections.append(("age_band", rel.breakdown(("ae", "age_band"), _counts(_age_bands_deep(age)), total), total))
    yoy = []
    for label, mask in (("attendances", pd.Series(True, index=health.index)),
                        ("admissions", health[hc.admitted].astype("string").str.upper().eq("Y").fillna(False)
                         if hc.admitted in health.columns else None)):
        if mask is None:
            continue
        kc, kp = ("ae", "current", label), ("ae", "previous", label)
        rel.count(kc, int((mask & in_period(ts, cfg.current_year)).sum()))
        rel.count(kp, int((mask & in_period(ts, cfg.previous_year)).sum()))
        yoy.append((label, kc, kp))

    def render() -> None:
        rows: list[dict[str, Any]] = [{"dimension": "all", "category": "attendances", "count": rel.value(total),
                                       "pct": None}]
        keys: set = {total}
        for dim, ks, den in sections:
            keys |= set(ks)
            rows += [{"dimension": dim, "category": k[-1], "count": rel.value(k), "pct": rel.pct(k, den)} for k in ks]
        for label, kc, kp in yoy:
            c, p = rel.value(kc), rel.value(kp)
            change: Any = (round(100.0 * (c - p) / p, 1) if p >= 10 else None) if isinstance(c, int) and \
                isinstance(p, int) else WITHHELD
            rows += [{"dimension": "year_on_year", "category": f"{label}: previous year", "count": p, "pct": None},
                     {"dimension": "year_on_year", "category": f"{label}: current year", "count": c, "pct": None},
                     {"dimension": "year_on_year", "category": f"{label}: change %", "count": None, "pct": change}]
            keys |= {kc, kp}
        rel.add_table("ae_assault_attendances", rows, keys)
    return render


def _same_numbers(occ: pd.DataFrame, cfg: ProfileConfig, rel: ProfileRelease) -> None:
    """Cells of different tables that count the same thing are tied together, so a number withheld in one
    table can never be read off another: the NTE total of the flags table and of the NTE deep dive, the
    public-place flag and the public-place denominator, and the current year's count and its months."""
    values = rel.reg.values
    pairs = [(("sv", "flag", "nte"), ("dd", "nte", "total")),
             (("sv", "public_total"), ("sv", "flag", "public_place"))]
    for a, b in pairs:
        if a in values and b in values and values[a] == values[b]:
            rel.constrain(a, [b])
    cur = cfg.current_year
    if cfg.period.start <= cur.start and cur.end <= cfg.period.end:
        months = pd.period_range(cur.start, cur.end, freq="M").strftime("%Y-%m")
        keys = [("sv", "month", m) for m in months if ("sv", "month", m) in values]
        kc = ("yoy", "current", "all serious violence")
        if kc in values and values[kc] == sum(values[k] for k in keys):
            rel.constrain(kc, keys)
