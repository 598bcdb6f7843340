"""Area concentration of risk factors among young people (the SNA's map of social-care and education risk).

Young people are those linked to the area source (education) whose school year puts them at ages 10-24
on the last day of the profile period. Their area is the postcode sector of their most recent education
record (an attribute the partner supplies); a factor counts when any education or social-care indicator
of the catalogue was ever recorded before that day. Counts per area are released through the profile's
:class:`ProfileRelease` and divided by the young resident population of the area.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from linkage.cohort.config import CohortConfig, RiskFactorCatalogue
from linkage.cohort.risk_factors import person_factors
from linkage.cohort.selection import to_day
from linkage.config import load_yaml_model
from linkage.profile.denominators import population_by
from linkage.profile.release import ProfileRelease

LEVEL_LABELS = {"sector": "postcode sector", "district": "district", "npa": "neighbourhood policing area"}


def young_people(education: pd.DataFrame, area_column: str, ref: pd.Timestamp) -> pd.DataFrame:
    """person_id, sector (latest record) and estimated age on ``ref`` from the school year."""
    ev = to_day(education["event_date"])
    nc = pd.to_numeric(education["nc_year"].astype("string").str.upper().replace({"R": "0"}), errors="coerce")
    start = ev.dt.year - (ev.dt.month < 9).astype(int)
    born = start - nc - 5  # academic year of birth
    df = pd.DataFrame({"person_id": education["person_id"].astype("string"), "day": ev, "born": born,
                       "sector": education[area_column].astype("string").str.strip().str.upper()})
    latest = df.dropna(subset=["day"]).sort_values(["person_id", "day"]).drop_duplicates("person_id", keep="last")
    born_mode = df.dropna(subset=["born"]).groupby("person_id")["born"].agg(lambda s: s.mode().iloc[0])
    latest["age"] = (ref.year - (ref.month < 9) - latest["person_id"].map(born_mode) - 1)
    return latest[["person_id", "sector", "age"]].reset_index(drop=True)


def choose_level(den: pd.DataFrame, levels: list[str], bands: list[str], minimum: int) -> str | None:
    for level in levels:
        pop = population_by(den, level, bands)
        if len(pop) and (pop >= minimum).mean() >= 0.8:
            return level
    return None


def area_section(loaded, payloads: dict[str, pd.DataFrame], den: pd.DataFrame
                 ) -> Callable[[ProfileRelease], Callable[[], None]] | None:
    cfg = loaded.profile
    ac = cfg.areas
    edu = payloads.get(ac.home_area_source)
    if edu is None or ac.home_area_column not in edu.columns or "sector" not in den.columns:
        return None
    ref = pd.Timestamp(cfg.period.end)
    yp = young_people(edu, ac.home_area_column, ref)
    yp = yp[(yp["age"] >= 10) & (yp["age"] <= 24)]
    catalogue = load_yaml_model(loaded.paths["risk_factors"], RiskFactorCatalogue)
    factors = []
    for f in catalogue.factors:
        inds = [i for i in f.indicators if i.source in ac.sources]
        if inds and catalogue.domains[f.domain].per_person:
            factors.append(f.model_copy(update={"indicators": inds}))
    catalogue = catalogue.model_copy(update={"factors": factors})
    cohort = pd.DataFrame({"person_id": yp["person_id"], "index_day": ref + pd.Timedelta(days=1),
                           "index_crime_ref": pd.Series(pd.NA, index=yp.index, dtype="string")})
    ccfg = CohortConfig.model_validate({"name": "area_concentration", "label": "young people",
                                        "qualifying_groups": ["serious_violence"]})
    flags = person_factors(cohort, {s: payloads[s] for s in ac.sources if s in payloads}, catalogue, ccfg, None)
    level = choose_level(den, ac.levels, ac.age_bands, ac.min_young_people) or ac.levels[-1]
    sector_map = den.drop_duplicates("sector").set_index("sector")
    named = (yp["sector"] if level == "sector" else yp["sector"].map(sector_map[level]) if level in sector_map
             else yp["sector"]).fillna("unknown")
    # an area the denominators do not name has no rate, and a payload's free text never reaches a table
    known = set(den[level].astype(str)) if level in den.columns else set()
    area = named.where(named.isin(known), "unknown").to_numpy()
    rf_cols = [f"rf_{f.id}" for f in factors if f"rf_{f.id}" in flags]
    flags = flags.assign(area=area, several=flags[rf_cols].sum(axis=1) >= ac.several,
                         any_factor=flags[rf_cols].any(axis=1))
    pop = population_by(den, level, ac.age_bands)
    measures = [("several", f"{ac.several}+ risk factors"), ("any_factor", "any risk factor")] + [
        (c, c[3:].replace("_", " ")) for c in rf_cols]

    def register(rel: ProfileRelease) -> Callable[[], None]:
        rel.populations["young_people|area"] = yp["person_id"].astype(str).tolist()
        total = ("area", "young", "all")
        rel.count(total, len(flags))
        area_keys = rel.breakdown(("area", "young"), flags["area"].value_counts().sort_index(), total)
        cells: list[tuple[str, str, Any, Any]] = []
        for m, label in measures:
            counts = flags.loc[flags[m], "area"].value_counts().reindex(flags["area"].unique(), fill_value=0)
            mtot = ("area", m, "all")
            rel.share(mtot, int(flags[m].sum()), total)
            for a, n in counts.sort_index().items():
                k = ("area", m, str(a))
                rel.share(k, int(n), ("area", "young", str(a)))
                cells.append((str(a), m, label, k))
            rel.constrain(mtot, [c[3] for c in cells if c[1] == m])

        def render() -> None:
            rows = []
            for a, m, label, k in cells:
                p = pop.get(a)
                rows.append({"level": LEVEL_LABELS.get(level, level), "area": a, "measure": m, "label": label,
                             "young_people_with": rel.value(k), "young_people_linked": rel.value(("area", "young", a)),
                             "young_population": None if p is None else int(p),
                             "rate_per_1000_young_people": rel.rate(k, p),
                             "pct_of_linked": rel.pct(k, ("area", "young", a))})
            several = [{"rank": 0, **r} for r in rows if r["measure"] == "several"]
            ranked = sorted(several, key=lambda r: (-(r["rate_per_1000_young_people"]
                                                      if isinstance(r["rate_per_1000_young_people"], float) else -1),
                                                    r["area"]))
            for i, r in enumerate(ranked, 1):
                r["rank"] = i
            rel.add_table("area_risk_factors", rows, {c[3] for c in cells} | set(area_keys) | {total})
            rel.add_table("area_ranking", ranked, {c[3] for c in cells if c[1] == "several"} | set(area_keys))
        return render
    return register
