"""Check the generated data against its calibration targets using the truth file (perfect linkage).

``high_harm_profile(out_dir)`` finds the high-harm cohort (suspects/offenders in GBH with intent, s20
GBH, attempted murder or murder), takes each person's most recent such offence as the index date and
counts, strictly before it, their prior offences, prior victimisation and individual/close-relationship
risk factors (domain notes §3). It is a yardstick for the generator, not the project's cohort engine:
it reads clear identifiers' truth mapping, which the real pipeline never has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

VIOLENCE_CLASSES = {"1", "2", "5D", "8N", "105A", "34B", "3B", "8P", "5E"}
DRUG_CLASSES = {"92A", "92C", "92D", "92E"}
FACTORS = ("exposure_to_violence", "witnessing_violence", "family_conflict", "lack_of_nurturing", "aces",
           "gang_involvement", "delinquent_peers", "economic_stress", "low_income", "unemployment",
           "low_educational_achievement", "neurodevelopmental", "mental_health", "substance_use",
           "previous_victim", "missing", "exploitation")


def _load(out_dir: Path, name: str, truth: pd.DataFrame, id_col: str) -> pd.DataFrame:
    df = pd.read_csv(out_dir / f"{name}.csv", dtype=str, keep_default_na=False)
    t = truth[truth["source"] == name][["local_id", "person_id"]]
    return df.merge(t, left_on=id_col, right_on="local_id", how="left")


def is_index_offence(police: pd.DataFrame) -> pd.Series:
    gbh_s20 = (police["ho_class"] == "8N") & police["offence_description"].str.contains(
        "grievous bodily harm", case=False)
    return (police["ho_class"].isin(["1", "2", "5D"]) | gbh_s20) & police["role"].isin(["SUSPECT", "OFFENDER"])


def high_harm_profile(out_dir: str | Path) -> dict:
    out_dir = Path(out_dir)
    truth = pd.read_csv(out_dir / "truth.csv", dtype=str, keep_default_na=False)
    pol = _load(out_dir, "police", truth, "nominal_id")
    edu = _load(out_dir, "education", truth, "upn")
    csc = _load(out_dir, "social_care", truth, "child_id")
    pol["when"] = pd.to_datetime(pol["committed_from"], format="%Y-%m-%d %H:%M")
    edu["when"] = pd.to_datetime(edu["event_date"], format="%Y-%m-%d")
    csc["when"] = pd.to_datetime(csc["start_date"], format="%d/%m/%Y")

    idx_rows = pol[is_index_offence(pol)]
    index = idx_rows.groupby("person_id")["when"].max().rename("index_when")
    index_refs = set(idx_rows.loc[idx_rows["when"] == idx_rows["person_id"].map(index), "crime_ref"])
    if index.empty:
        return {"n": 0}

    def before(df: pd.DataFrame) -> pd.DataFrame:
        d = df.merge(index, left_on="person_id", right_index=True)
        return d[d["when"] < d["index_when"]]

    p, e, c = before(pol), before(edu), before(csc)
    p = p[~p["crime_ref"].isin(index_refs)]
    sus = p[p["role"].isin(["SUSPECT", "OFFENDER"])]
    flags: dict[str, set] = {}
    factors = c["assessment_factors"].str.split(";")
    has = lambda codes: set(c.loc[factors.apply(lambda f: bool(set(f) & codes)), "person_id"])  # noqa: E731
    violent = p["ho_class"].isin(VIOLENCE_CLASSES) | (p["da_flag"] == "Y")
    flags["exposure_to_violence"] = (has({"3A", "3B", "3C", "18B", "18C"})
                                     | set(c.loc[c["cp_category"] == "PHY", "person_id"])
                                     | set(p.loc[(p["da_flag"] == "Y") & p["role"].isin(["VICTIM", "WITNESS"]),
                                                 "person_id"]))
    flags["witnessing_violence"] = set(p.loc[violent & (p["role"] == "WITNESS"), "person_id"])
    flags["family_conflict"] = (set(c.loc[c["primary_need"].isin(["N4", "N5"]), "person_id"])
                                | set(sus.loc[sus["da_flag"] == "Y", "person_id"]))
    cla = c[(c["record_type"] == "CLA_EPISODE") & ~c["legal_status"].str.startswith("J")]
    flags["lack_of_nurturing"] = (set(cla["person_id"]) | set(c.loc[c["primary_need"] == "N8", "person_id"])
                                  | has({"16A", "17A"}) | set(c.loc[c["cp_category"].isin(["NEG", "EMO"]),
                                                                    "person_id"]))
    flags["aces"] = (set(c.loc[c["record_type"] == "CP_PLAN", "person_id"])
                     | has({"16A", "17A", "18B", "18C", "19B", "19C", "1B", "2B", "4B"}))
    flags["gang_involvement"] = has({"13A", "24A"}) | set(p.loc[(p["gang_flag"] == "Y") | (p["cce_flag"] == "Y"),
                                                                "person_id"])
    co = pol[pol["role"].isin(["SUSPECT", "OFFENDER"])].groupby("crime_ref")["person_id"].nunique()
    flags["delinquent_peers"] = set(sus.loc[sus["crime_ref"].map(co) >= 2, "person_id"])
    flags["economic_stress"] = set(c.loc[c["primary_need"] == "N7", "person_id"])
    flags["low_income"] = set(e.loc[e["fsm_eligible"] == "1", "person_id"])
    flags["unemployment"] = set(e.loc[e["record_type"] == "NEET", "person_id"])
    census = e[e["record_type"] == "CENSUS"]
    absent = census["sessions_missed"].astype(float) >= 0.1 * census["sessions_possible"].astype(float)
    flags["low_educational_achievement"] = (set(e.loc[e["record_type"] == "EXCLUSION", "person_id"])
                                            | set(census.loc[absent | (census["ap_placement"] == "1"),
                                                             "person_id"]))
    flags["neurodevelopmental"] = (set(e.loc[e["sen_primary_need"].isin(["ASD", "SLCN", "SPLD", "MLD", "SLD",
                                                                         "PMLD"]), "person_id"]) | has({"5A"}))
    flags["mental_health"] = (has({"4A", "15A"}) | set(e.loc[e["sen_primary_need"] == "SEMH", "person_id"])
                              | set(p.loc[p["markers"].str.contains("MH|SELF_HARM"), "person_id"]))
    flags["substance_use"] = (has({"1A", "2A"}) | set(c.loc[c["substance_misuse"] == "1", "person_id"])
                              | set(e.loc[e["exclusion_reason"] == "DA", "person_id"])
                              | set(sus.loc[sus["ho_class"].isin(DRUG_CLASSES), "person_id"]))
    flags["previous_victim"] = set(p.loc[p["role"] == "VICTIM", "person_id"])
    flags["missing"] = (has({"10A"}) | set(c.loc[c["record_type"] == "MISSING", "person_id"])
                        | set(p.loc[p["role"] == "MISSING_PERSON", "person_id"]))
    flags["exploitation"] = has({"11A", "12A", "24A"}) | set(p.loc[(p["cse_flag"] == "Y") | (p["cce_flag"] == "Y"),
                                                                   "person_id"])
    people = index.index
    table = pd.DataFrame({f: people.isin(list(flags[f])) for f in FACTORS}, index=people)
    priors = sus.groupby("person_id")["crime_ref"].nunique().reindex(people, fill_value=0)
    return {
        "n": int(len(people)),
        "mean_factors": float(table.sum(axis=1).mean()),
        "mean_prior_offences": float(priors.mean()),
        "median_prior_offences": float(priors.median()),
        "share_prior_victim": float(table["previous_victim"].mean()),
        "factor_prevalence": {f: round(float(table[f].mean()), 3) for f in FACTORS},
    }


# --- SNA profile (issue 17) ------------------------------------------------------------------------

PUBLISHED_PROFILE = {  # SNA 2024-25 (domain notes §0); shares in %, rates per 1,000 over Apr 2023-Sep 2024
    "domestic_pct": 31.0, "public_place_pct": 24.0, "sexual_pct": 10.0, "knife_pct": 5.0, "nte_pct": 7.0,
    "nte_of_public_pct": 25.0, "knife_in_leicester_city_pct": 61.0, "victims_female_pct": 55.0,
    "perpetrators_male_pct": 70.0, "perpetrators_u25_pct": 32.0, "u25_peak_hour": 15,
}


def _raw_frames(out_dir: Path) -> dict[str, pd.DataFrame]:
    truth = pd.read_csv(out_dir / "truth.csv", dtype=str, keep_default_na=False)
    frames = {"police": _load(out_dir, "police", truth, "nominal_id"),
              "education": _load(out_dir, "education", truth, "upn"),
              "social_care": _load(out_dir, "social_care", truth, "child_id")}
    for col in ("fsm_eligible", "sessions_possible", "sessions_missed", "ap_placement"):
        frames["education"][col] = pd.to_numeric(frames["education"][col], errors="coerce")
    frames["education"]["event_date"] = pd.to_datetime(frames["education"]["event_date"], format="%Y-%m-%d")
    for col in ("start_date", "end_date"):
        frames["social_care"][col] = pd.to_datetime(frames["social_care"][col], format="%d/%m/%Y", errors="coerce")
    frames["police"]["committed_from"] = pd.to_datetime(frames["police"]["committed_from"], format="%Y-%m-%d %H:%M")
    return frames


def sna_profile(out_dir: str | Path, config: str | Path | None = None) -> dict:
    """The profile's headline figures on a synth folder, linked by truth (perfect linkage), with the
    published values they are calibrated to. Uses the same code as ``linkage profile``."""
    from linkage.profile import profile_from_frames
    from linkage.profile.config import load_profile_config
    from linkage.profile.denominators import load_denominators

    out_dir = Path(out_dir)
    loaded = load_profile_config(config)
    frames = _raw_frames(out_dir)
    den = load_denominators(out_dir / "population.csv")
    rel = profile_from_frames(loaded, frames["police"], frames, den)
    from linkage.cohort.tables import WITHHELD

    t: dict[str, list[dict[str, Any]]] = {name: [{k: ("c" if v is WITHHELD else v) for k, v in r.items()} for r in rows]
         for name, rows in rel.tables.items()}
    flags = {r["measure"]: r["pct"] for r in t["flag_shares"]}
    rates = {r["area"]: r["rate_per_1000"] for r in t["sv_by_area"] if r["level"] in ("LLR", "la", "district")}
    hours = {int(r["hour"][:2]): r["under_25_involved"] for r in t["by_hour"]
             if isinstance(r["under_25_involved"], int)}
    agesex = t["age_sex_rates"]

    def share(role: str, pred) -> float | None:
        rows = [r for r in agesex if r["role"] == role and isinstance(r["people_involved"], int)]
        tot = sum(r["people_involved"] for r in rows)
        return round(100 * sum(r["people_involved"] for r in rows if pred(r)) / tot, 1) if tot else None

    u25 = {"0-9", "10-17", "18-24"}
    got = {"domestic_pct": flags.get("domestic"), "public_place_pct": flags.get("public_place"),
           "sexual_pct": flags.get("sexual"), "knife_pct": flags.get("knife"), "nte_pct": flags.get("nte"),
           "nte_of_public_pct": flags.get("nte_of_public"),
           "knife_in_leicester_city_pct": flags.get("knife_in_leicester_city"),
           "victims_female_pct": share("victim", lambda r: r["sex"] == "F"),
           "perpetrators_male_pct": share("perpetrator", lambda r: r["sex"] == "M"),
           "perpetrators_u25_pct": share("perpetrator", lambda r: r["age_band"] in u25),
           "u25_peak_hour": max(hours, key=lambda h: hours[h]) if hours else None}
    import json

    scale = json.loads((out_dir / "manifest.json").read_text())["params"]["sna"]["rate_scale"]
    scaled = {a: (round(r / scale, 1) if isinstance(r, (int, float)) else r) for a, r in rates.items()}
    return {"reproduced": got, "published": PUBLISHED_PROFILE, "rates_per_1000": rates,
            "rates_per_1000_over_rate_scale": scaled, "rate_scale": scale,
            "offence_groups": {r["offence_group"]: r["share_pct"] for r in t["offence_groups"]},
            "nte": t["nte_deep_dive"], "after_school": t["after_school_deep_dive"],
            "knife_u25": t["knife_u25_deep_dive"],
            "area_ranking": t.get("area_ranking", [])}


def cohort_profile(out_dir: str | Path, cohort_config: str | Path) -> dict:
    """A shipped cohort (e.g. configs/cohorts/knife_u25.yaml) on a synth folder linked by truth, through the
    cohort engine's own person frame: size, previous victims and factor prevalence (VRN-internal numbers,
    for calibration only; releases go through ``linkage cohort``)."""
    from linkage.cohort import build_person_frame
    from linkage.cohort.config import load_cohort_config
    from linkage.cohort.inputs import CohortInputs

    out_dir = Path(out_dir)
    frames = _raw_frames(out_dir)
    frames["police"]["age_at_occurrence"] = pd.to_numeric(frames["police"]["age_at_occurrence"], errors="coerce")
    ids = {"police": "nominal_id", "education": "upn", "social_care": "child_id"}
    if (out_dir / "health.csv").is_file():
        truth = pd.read_csv(out_dir / "truth.csv", dtype=str, keep_default_na=False)
        ae = _load(out_dir, "health", truth, "hospital_number")
        ae["arrival_datetime"] = pd.to_datetime(ae["arrival_datetime"], format="%Y-%m-%d %H:%M")
        frames["health"], ids["health"] = ae, "hospital_number"
    crosswalk = pd.concat([pd.DataFrame({"person_id": f["person_id"], "source": s, "record_id": f[ids[s]]})
                           for s, f in frames.items()]).drop_duplicates().astype("string")
    loaded = load_cohort_config(cohort_config)
    persons = build_person_frame(loaded, CohortInputs(crosswalk=crosswalk, payloads=frames))
    rf = [c for c in persons.columns if c.startswith("rf_")]
    return {"n": int(len(persons)), "share_prior_victim": round(float(persons["previous_victim"].mean()
                                                                      if "previous_victim" in persons
                                                                      else persons["prior_victim"].mean()), 3),
            "subgroups": persons["subgroup"].value_counts(normalize=True).round(3).to_dict(),
            "age_bands": persons["age_band"].value_counts(normalize=True).round(3).to_dict(),
            "factor_prevalence": {c[3:]: round(float(persons[c].mean()), 3) for c in rf}}
