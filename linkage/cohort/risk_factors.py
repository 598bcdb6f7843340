"""Risk-factor flags per cohort member, from the indicator catalogue (data, not code).

A factor is present when at least one of its indicators holds on a record dated strictly before the
person's index day. Which people *could* show a factor is decided by the sources its indicators read:
the denominator of a factor is the cohort members linked to at least one of them.
"""

from __future__ import annotations

import pandas as pd

from linkage.cohort.config import CohortConfig, Condition, Indicator, RiskFactorCatalogue
from linkage.cohort.offences import OffenceClassifier
from linkage.cohort.selection import to_day
from linkage.errors import LinkageInputError

CO_OFFENDERS = "_co_offenders"  # derived police column: other people suspected/charged on the same crime


def add_derived_police_columns(police: pd.DataFrame, cfg: CohortConfig) -> pd.DataFrame:
    """Add columns that need a look across people (co-offending), so indicators can stay declarative."""
    pc = cfg.police
    if pc.crime_ref not in police or pc.role not in police:
        return police
    role = police[pc.role].astype("string").str.strip().str.upper()
    off = police.loc[role.isin([r.upper() for r in pc.offender_roles]).fillna(False), [pc.crime_ref, "person_id"]]
    per_crime = off.drop_duplicates().groupby(pc.crime_ref)["person_id"].nunique()
    n = police[pc.crime_ref].map(per_crime).fillna(0).astype(int)
    # The person's own involvement is one of them when they are a suspect/offender on the crime.
    is_off = role.isin([r.upper() for r in pc.offender_roles]).fillna(False).astype(int)
    return police.assign(**{CO_OFFENDERS: (n - is_off).clip(lower=0)})


def _codes(series: pd.Series) -> pd.Series:
    """';'-separated code lists -> list of upper-case codes (empty list when missing)."""
    s = series.astype("string").fillna("").str.upper()
    return s.str.split(r"\s*;\s*", regex=True).map(lambda parts: [p.strip() for p in parts if p.strip()])


def evaluate_condition(df: pd.DataFrame, cond: Condition, source: str,
                       classifier: OffenceClassifier | None) -> pd.Series:
    """Boolean Series: rows of ``df`` meeting ``cond``. Missing values never meet a test (except is_null)."""
    if cond.op == "offence_group":
        if classifier is None:
            raise LinkageInputError("offence_group tests need the police source", file=f"{source} payload",
                                    field=cond.column)
        group = cond.group or ""  # the condition model requires a group for offence_group tests
        return classifier.mask(group).reindex(df.index, fill_value=False)
    if cond.column not in df.columns:
        raise LinkageInputError("payload column used by a risk-factor indicator is missing",
                                file=f"{source} payload.parquet", field=cond.column)
    col = df[cond.column]
    op = cond.op
    if op == "is_null":
        return col.isna() | (col.astype("string").str.strip() == "").fillna(True)
    if op == "not_null":
        return (col.notna() & (col.astype("string").str.strip() != "")).fillna(False).astype(bool)
    if op in ("ge", "gt", "le", "lt", "ratio_ge"):
        num = pd.to_numeric(col, errors="coerce")
        if cond.value is None:
            raise LinkageInputError("a comparison test needs a value", file="cohort config", field=cond.column)
        value = float(cond.value)
        if op == "ratio_ge":
            if cond.denominator_column not in df.columns:
                raise LinkageInputError("payload column used by a risk-factor indicator is missing",
                                        file=f"{source} payload.parquet", field=cond.denominator_column)
            den = pd.to_numeric(df[cond.denominator_column], errors="coerce")
            num = num / den.where(den > 0)
            op = "ge"
        result = {"ge": num >= value, "gt": num > value, "le": num <= value, "lt": num < value}[op]
        return result.fillna(False).astype(bool)
    if op in ("eq", "ne") and isinstance(cond.value, (int, float)):
        num = pd.to_numeric(col, errors="coerce")  # 1 == 1.0 == "1": compare numbers as numbers
        result = (num == cond.value) if op == "eq" else ((num != cond.value) & num.notna())
        return result.fillna(False).astype(bool)
    text = col.astype("string").str.strip().str.upper()
    if op == "eq":
        result = text == str(cond.value).upper()
    elif op == "ne":
        result = (text != str(cond.value).upper()) & text.notna()
    elif op == "in":
        result = text.isin([v.upper() for v in cond.values])
    elif op == "not_in":
        result = ~text.isin([v.upper() for v in cond.values]) & text.notna()
    elif op == "contains_any":
        wanted = {v.upper() for v in cond.values}
        result = _codes(col).map(lambda codes: bool(wanted.intersection(codes)))
    elif op == "regex":
        result = col.astype("string").str.contains(str(cond.value), case=False, regex=True)
    else:  # pragma: no cover - the config model only admits the ops above
        raise ValueError(op)
    return result.fillna(False).astype(bool)


def indicator_hits(payload: pd.DataFrame, indicator: Indicator, cohort: pd.DataFrame,
                   classifier: OffenceClassifier | None, crime_ref_column: str) -> pd.Series:
    """Set of cohort person_ids with the indicator dated strictly before their index day."""
    mask = pd.Series(True, index=payload.index)
    for cond in indicator.when:
        mask &= evaluate_condition(payload, cond, indicator.source, classifier)
    if indicator.date_column not in payload.columns:
        raise LinkageInputError("date column of a risk-factor indicator is missing",
                                file=f"{indicator.source} payload.parquet", field=indicator.date_column)
    rows = payload.loc[mask, ["person_id"]].assign(day=to_day(payload.loc[mask, indicator.date_column]))
    if indicator.exclude_index_crime and crime_ref_column in payload:
        rows["crime_ref"] = payload.loc[mask, crime_ref_column].astype("string")
    rows = rows.merge(cohort[["person_id", "index_day", "index_crime_ref"]], on="person_id", how="inner")
    ok = rows["day"] < rows["index_day"]  # strict: the index day itself never counts
    if "crime_ref" in rows:
        ok &= (rows["crime_ref"] != rows["index_crime_ref"]).fillna(True)
    return pd.Series(rows.loc[ok.fillna(False), "person_id"].unique(), dtype="string")


def factor_sources(catalogue: RiskFactorCatalogue) -> dict[str, list[str]]:
    return {f.id: sorted({i.source for i in f.indicators}) for f in catalogue.factors}


def person_factors(cohort: pd.DataFrame, payloads: dict[str, pd.DataFrame], catalogue: RiskFactorCatalogue,
                   cfg: CohortConfig, classifier: OffenceClassifier | None) -> pd.DataFrame:
    """person_id plus one boolean column per codable factor (``rf_<id>``) and per-domain counts."""
    out = pd.DataFrame({"person_id": cohort["person_id"].astype("string")})
    for factor in catalogue.factors:
        if not factor.indicators:
            continue  # "no data" factors get no column, so they can never be reported as 0%
        present: set[str] = set()
        for ind in factor.indicators:
            payload = payloads.get(ind.source)
            if payload is None:
                continue  # source not supplied: people cannot show it and fall out of the denominator
            police_cls = classifier if ind.source == cfg.police.source else None
            present.update(indicator_hits(payload, ind, cohort, police_cls, cfg.police.crime_ref))
        out[f"rf_{factor.id}"] = out["person_id"].isin(present)
    for dom_id, dom in catalogue.domains.items():
        cols = [f"rf_{f.id}" for f in catalogue.factors if f.domain == dom_id and f"rf_{f.id}" in out]
        if dom.per_person:
            out[f"n_{dom_id}"] = out[cols].sum(axis=1).astype(int) if cols else 0
    counted = [f"rf_{f.id}" for f in catalogue.factors
               if catalogue.domains[f.domain].per_person and f"rf_{f.id}" in out]
    out["n_factors"] = out[counted].sum(axis=1).astype(int) if counted else 0
    return out
