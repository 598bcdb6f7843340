"""Who is in the cohort: each person's index offence, sub-group, age (if knowable) and police history.

The index offence is the person's most recent qualifying offence (as suspect or offender) inside the
date window. "Before the index" always means an earlier calendar day: events on the index day itself,
including the index occurrence, never count.
"""

from __future__ import annotations

import pandas as pd

from linkage.cohort.config import CohortConfig
from linkage.cohort.offences import OffenceClassifier
from linkage.errors import LinkageInputError

OTHER_SUBGROUP = "other"


def to_day(values: pd.Series) -> pd.Series:
    """Any date/datetime column -> datetime64 at midnight (missing stays NaT)."""
    return pd.to_datetime(values, errors="coerce").dt.normalize().astype("datetime64[ns]")


def _require(df: pd.DataFrame, columns: list[str], source: str) -> None:
    for col in columns:
        if col not in df.columns:
            raise LinkageInputError("payload column needed by the cohort config is missing",
                                    file=f"{source} payload.parquet", field=col)


def flag_mask(police: pd.DataFrame, classifier: OffenceClassifier, flag: str) -> pd.Series:
    """Rows carrying an occurrence flag of the taxonomy (a column value, or an offence group)."""
    spec = classifier.taxonomy.flags[flag]
    if spec.offence_group is not None:
        return classifier.mask(spec.offence_group)
    assert spec.column is not None
    if spec.column not in police.columns:
        raise LinkageInputError("payload column needed by an offence flag is missing",
                                file="police payload.parquet", field=spec.column)
    wanted = {v.strip().upper() for v in spec.values}
    return police[spec.column].astype("string").str.strip().str.upper().isin(wanted).fillna(False).astype(bool)


def _upper(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.upper()


def index_filter_mask(police: pd.DataFrame, cfg: CohortConfig, classifier: OffenceClassifier) -> pd.Series:
    """Rows meeting the config's ``index`` conditions: flags, age at the offence, relationship, area."""
    pc, f = cfg.police, cfg.index
    keep = pd.Series(True, index=police.index)
    for flag in f.flags:
        keep &= flag_mask(police, classifier, flag)
    if f.age_min is not None or f.age_max is not None:
        _require(police, [pc.age_at_occurrence], pc.source)
        age = pd.to_numeric(police[pc.age_at_occurrence], errors="coerce")
        # an offence with no recorded age cannot be shown to meet an age condition
        keep &= age.notna()
        if f.age_min is not None:
            keep &= (age >= f.age_min).fillna(False)
        if f.age_max is not None:
            keep &= (age <= f.age_max).fillna(False)
    if f.relationships:
        _require(police, [pc.relationship], pc.source)
        keep &= _upper(police[pc.relationship]).isin({r.upper() for r in f.relationships}).fillna(False)
    if f.areas:
        wanted = {a.strip().upper() for a in f.areas}
        in_area = pd.Series(False, index=police.index)
        for col in (pc.area, pc.district):
            if col in police.columns:
                in_area |= _upper(police[col]).isin(wanted).fillna(False)
        keep &= in_area
    return keep.astype(bool)


def _subgroup_mask(police: pd.DataFrame, sg, cfg: CohortConfig, classifier: OffenceClassifier) -> pd.Series:
    hit = pd.Series(True, index=police.index)
    if sg.offence_groups:
        any_group = pd.Series(False, index=police.index)
        for g in sg.offence_groups:
            any_group |= classifier.mask(g)
        hit &= any_group
    for flag in sg.flags:
        hit &= flag_mask(police, classifier, flag)
    if sg.relationships:
        col = cfg.police.relationship
        _require(police, [col], cfg.police.source)
        hit &= _upper(police[col]).isin({r.upper() for r in sg.relationships}).fillna(False)
    return hit.astype(bool)


def select_cohort(police: pd.DataFrame, cfg: CohortConfig, classifier: OffenceClassifier) -> pd.DataFrame:
    """One row per cohort member: person_id, index_day, index_crime_ref, subgroup, ethnicity, area."""
    pc = cfg.police
    _require(police, [pc.crime_ref, pc.ho_class, pc.description, pc.committed, pc.role], pc.source)
    day = to_day(police[pc.committed])
    role = police[pc.role].astype("string").str.strip().str.upper()
    qualifying = pd.Series(False, index=police.index)
    for g in cfg.qualifying_groups:
        qualifying |= classifier.mask(g)
    keep = qualifying & role.isin([r.upper() for r in pc.offender_roles]).fillna(False) & day.notna()
    keep &= index_filter_mask(police, cfg, classifier)
    if cfg.start is not None:
        keep &= day >= pd.Timestamp(cfg.start)
    if cfg.end is not None:
        keep &= day <= pd.Timestamp(cfg.end)
    rows = police.loc[keep].assign(_day=day[keep], _ts=pd.to_datetime(police.loc[keep, pc.committed]))
    subgroup = pd.Series(OTHER_SUBGROUP, index=rows.index, dtype="string")
    for name, sg in reversed(list(cfg.subgroups.items())):
        hit = _subgroup_mask(police, sg, cfg, classifier).loc[rows.index]
        subgroup = subgroup.mask(hit, name)
    rows["subgroup"] = subgroup
    # Most recent first; ties on time broken by crime reference so reruns pick the same occurrence.
    rows = rows.sort_values(["person_id", "_ts", pc.crime_ref], ascending=[True, False, False], kind="stable")
    index = rows.drop_duplicates("person_id", keep="first")
    out = pd.DataFrame({
        "person_id": index["person_id"].astype("string").to_numpy(),
        "index_day": index["_day"].to_numpy(),
        "index_crime_ref": index[pc.crime_ref].astype("string").to_numpy(),
        "subgroup": index["subgroup"].to_numpy(),
        "ethnicity": (index[pc.ethnicity].astype("string").to_numpy() if pc.ethnicity in index
                      else pd.NA),
        "area": index[pc.area].astype("string").to_numpy() if pc.area in index else pd.NA,
        "age": (pd.to_numeric(index[pc.age_at_occurrence], errors="coerce").to_numpy()
                if pc.age_at_occurrence in index else pd.NA),
    })
    out["age_source"] = pd.Series(["police"] * len(out), dtype="string").where(out["age"].notna())
    return out.reset_index(drop=True)


def _academic_start(days: pd.Series) -> pd.Series:
    return days.dt.year - (days.dt.month < 9).astype(int)


def school_year_age(cohort: pd.DataFrame, education: pd.DataFrame | None, cfg: CohortConfig) -> pd.Series:
    """Age at the start of the academic year holding the index day, from national-curriculum years.

    A pupil in year Y in the academic year starting September A is Y + 4 on 31 August A, so the pupil's
    birth cohort follows from any census row; the true age on the index day is this value or one more.
    """
    est = cfg.age.school_year_estimate
    if education is None or est is None or est.nc_year not in education or est.event_date not in education:
        return pd.Series(pd.NA, index=cohort.index, dtype="Float64")
    nc = education[est.nc_year].astype("string").str.strip().str.upper().replace({"R": "0"})
    nc_num = pd.to_numeric(nc, errors="coerce")
    ev = to_day(education[est.event_date])
    ok = nc_num.notna() & ev.notna()
    born = (_academic_start(ev[ok]) - nc_num[ok] - 5).astype(int)  # academic year of birth
    per_person = pd.DataFrame({"person_id": education.loc[ok, "person_id"], "born": born})
    # Held-back pupils or keying slips can disagree: take the commonest cohort (earliest on a tie).
    mode = (per_person.groupby(["person_id", "born"]).size().rename("n").reset_index()
            .sort_values(["person_id", "n", "born"], ascending=[True, False, True])
            .drop_duplicates("person_id").set_index("person_id")["born"])
    born_of = cohort["person_id"].map(mode)
    age = _academic_start(pd.to_datetime(cohort["index_day"])) - born_of - 1
    return pd.to_numeric(age, errors="coerce").astype("Float64")


def police_history(cohort: pd.DataFrame, police: pd.DataFrame, cfg: CohortConfig,
                   victim_roles: tuple[str, ...] = ("VICTIM",)) -> pd.DataFrame:
    """Prior offences (distinct crimes as suspect/offender) and prior victimisations, strictly before."""
    pc = cfg.police
    day = to_day(police[pc.committed])
    role = police[pc.role].astype("string").str.strip().str.upper()
    hist = pd.DataFrame({"person_id": police["person_id"].astype("string"), "day": day, "role": role,
                         "crime_ref": police[pc.crime_ref].astype("string")})
    hist = hist.merge(cohort[["person_id", "index_day", "index_crime_ref"]], on="person_id", how="inner")
    before = (hist["day"] < hist["index_day"]) & (hist["crime_ref"] != hist["index_crime_ref"]).fillna(True)
    hist = hist[before.fillna(False)]
    offences = (hist[hist["role"].isin([r.upper() for r in pc.offender_roles])]
                .groupby("person_id")["crime_ref"].nunique())
    victim = hist[hist["role"].isin(victim_roles)].groupby("person_id")["crime_ref"].nunique()
    out = pd.DataFrame({"person_id": cohort["person_id"]})
    out["prior_offences"] = out["person_id"].map(offences).fillna(0).astype(int)
    out["prior_victimisations"] = out["person_id"].map(victim).fillna(0).astype(int)
    out["prior_victim"] = out["prior_victimisations"] > 0
    return out


def band_label(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else (f"{lo}+" if hi >= 99 else f"{lo}-{hi}")


def to_band(values: pd.Series, bands: list[tuple[int, int]], unknown: str = "unknown") -> pd.Series:
    """Map numbers to band labels; values outside every band (or missing) get ``unknown``."""
    out = pd.Series(unknown, index=values.index, dtype="string")
    num = pd.to_numeric(values, errors="coerce")
    for lo, hi in bands:
        out = out.mask((num >= lo) & (num <= hi), band_label(lo, hi))
    return out


def quarter_label(days: pd.Series) -> pd.Series:
    d = pd.to_datetime(days)
    return (d.dt.year.astype("string") + "-Q" + d.dt.quarter.astype("string")).astype("string")
