"""The SNA profile's figure definitions, on police payload rows (one row per person per occurrence).

Pure functions from data frames to counts: which occurrences are serious violence, their flags, the
night-time-economy and after-school windows, who was involved and how old. Nothing here rounds or
suppresses; :mod:`linkage.profile.release` does that, in one place, for every released number.
"""

from __future__ import annotations

import pandas as pd

from linkage.cohort.offences import OffenceClassifier
from linkage.cohort.selection import flag_mask
from linkage.errors import LinkageInputError
from linkage.profile.config import Period, ProfileConfig, TimeWindow

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
UNKNOWN = "unknown"


def in_window(hour: pd.Series, window: TimeWindow) -> pd.Series:
    """Hour (0-23) inside [start_hour, end_hour), wrapping past midnight when end <= start."""
    s, e = window.start_hour, window.end_hour
    if e > s:
        return (hour >= s) & (hour < e)
    return (hour >= s) | (hour < e)


def in_period(ts: pd.Series, period: Period) -> pd.Series:
    day = ts.dt.normalize()
    return (day >= pd.Timestamp(period.start)) & (day <= pd.Timestamp(period.end))


def _upper(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.upper()


def occurrences(police: pd.DataFrame, classifier: OffenceClassifier, cfg: ProfileConfig) -> pd.DataFrame:
    """One row per serious-violence occurrence (any date) with its place, time, group, flags and windows.

    Occurrence attributes are taken from its first row; ``young_involved`` / ``child_involved`` say whether
    any victim or suspect/offender was at most ``young_age_max`` / ``after_school.max_age`` years old.
    """
    pc = cfg.police
    for col in (pc.crime_ref, pc.committed, pc.role, pc.ho_class):
        if col not in police.columns:
            raise LinkageInputError("payload column needed by the profile is missing",
                                    file=f"{pc.source} payload.parquet", field=col)
    sv = classifier.mask(cfg.serious_violence_group)
    ts = pd.to_datetime(police[pc.committed], errors="coerce")
    rows = police.loc[sv & ts.notna()].assign(_ts=ts[sv & ts.notna()])
    role = _upper(rows[pc.role])
    people_roles = {r.upper() for r in [*cfg.victim_roles, *pc.offender_roles]}
    age = (pd.to_numeric(rows[pc.age_at_occurrence], errors="coerce") if pc.age_at_occurrence in rows
           else pd.Series(float("nan"), index=rows.index))
    involved = role.isin(people_roles).fillna(False)
    young = (involved & (age <= cfg.young_age_max)).groupby(rows[pc.crime_ref]).any()
    child = (involved & (age <= cfg.after_school.max_age)).groupby(rows[pc.crime_ref]).any()
    offender = role.isin({r.upper() for r in pc.offender_roles}).fillna(False)
    young_suspect = (offender & (age <= cfg.young_age_max)).groupby(rows[pc.crime_ref]).any()
    first = rows.drop_duplicates(pc.crime_ref, keep="first")
    group = classifier.first_group(cfg.offence_groups).loc[first.index].fillna("other")
    loc = (_upper(first[cfg.location_column]) if cfg.location_column in first
           else pd.Series(pd.NA, index=first.index, dtype="string"))
    hour = first["_ts"].dt.hour
    out = pd.DataFrame({
        "crime_ref": first[pc.crime_ref].astype("string"),
        "ts": first["_ts"], "hour": hour, "weekday": first["_ts"].dt.weekday, "month": first["_ts"].dt.month,
        "offence_group": group,
        "district": (first[pc.district].astype("string") if pc.district in first else pd.NA),
        "npa": first[pc.area].astype("string") if pc.area in first else pd.NA,
        "location": loc,
    }, index=first.index)
    for f in cfg.flags:
        out[f"flag_{f}"] = flag_mask(police, classifier, f).loc[first.index].to_numpy()
    out["public"] = loc.isin({x.upper() for x in cfg.public_locations}).fillna(False).to_numpy()
    nte_loc = loc.isin({x.upper() for x in cfg.nte.locations}).fillna(False)
    out["nte"] = (nte_loc & in_window(hour, cfg.nte.window)).to_numpy()
    out["young_involved"] = out["crime_ref"].map(young).fillna(False).astype(bool).to_numpy()
    out["child_involved"] = out["crime_ref"].map(child).fillna(False).astype(bool).to_numpy()
    out["young_suspect"] = out["crime_ref"].map(young_suspect).fillna(False).astype(bool).to_numpy()
    out["relationship"] = (first[pc.relationship].astype("string").str.strip().str.upper().fillna(UNKNOWN)
                           .replace("", UNKNOWN).to_numpy() if pc.relationship in first else UNKNOWN)
    out["knife_u25"] = (out["flag_knife"] & out["young_suspect"]) if "flag_knife" in out else False
    out["after_school"] = (in_window(hour, cfg.after_school.window).to_numpy() & out["child_involved"].to_numpy())
    for col in ("district", "npa", "location"):
        out[col] = out[col].astype("string").fillna(UNKNOWN).replace("", UNKNOWN)
    return out.reset_index(drop=True)


def involvements(police: pd.DataFrame, crime_refs: pd.Series, cfg: ProfileConfig, roles: list[str]) -> pd.DataFrame:
    """Distinct (occurrence, person) involvements in ``roles`` on the given occurrences: age and sex."""
    pc = cfg.police
    role = _upper(police[pc.role])
    keep = role.isin({r.upper() for r in roles}).fillna(False) & police[pc.crime_ref].astype("string").isin(
        set(crime_refs))
    rows = police.loc[keep]
    pid = rows["person_id"].astype("string") if "person_id" in rows else rows.index.astype("string")
    out = pd.DataFrame({"crime_ref": rows[pc.crime_ref].astype("string"), "person": pid,
                        "age": (pd.to_numeric(rows[pc.age_at_occurrence], errors="coerce")
                                if pc.age_at_occurrence in rows else float("nan")),
                        "sex": (_upper(rows[cfg.sex_column]) if cfg.sex_column in rows else pd.NA)})
    out["sex"] = out["sex"].where(out["sex"].isin(["M", "F"]), UNKNOWN)
    return out.drop_duplicates(["crime_ref", "person"]).reset_index(drop=True)


def age_band_of(age: pd.Series, labels: list[str]) -> pd.Series:
    """Map ages to denominator band labels such as '10-17' or '65+'; others become 'unknown'."""
    out = pd.Series(UNKNOWN, index=age.index, dtype="string")
    for lab in labels:
        lo, _, hi = lab.replace("+", "-999").partition("-")
        out = out.mask((age >= int(lo)) & (age <= int(hi)), lab)
    return out
