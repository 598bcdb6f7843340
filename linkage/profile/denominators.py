"""Population denominators for rates: a CSV of residents by area (and optionally age band and sex).

Columns: any of ``sector``, ``district``, ``npa``, ``la``; optional ``age_band`` and ``sex``; ``population``.
The shipped default (``data/ons_census2021_llr.csv``) holds the ONS Census 2021 usual residents of the
nine LLR districts, rounded to the nearest 100 (Office for National Statistics, Open Government Licence
v3.0; see ``data/LICENCE.md``). ``linkage synth`` writes a SYNTHETIC table of the same shape.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from linkage.errors import LinkageInputError

SHIPPED = Path(__file__).parent / "data" / "ons_census2021_llr.csv"
LEVELS = ("sector", "district", "npa", "la")


def load_denominators(path: str | Path | None) -> pd.DataFrame:
    p = Path(path) if path is not None else SHIPPED
    if not p.is_file():
        raise LinkageInputError("file not found", file=str(p))
    df = pd.read_csv(p, dtype=str, keep_default_na=False, comment="#")
    if "population" not in df.columns:
        raise LinkageInputError("required column is missing", file=str(p), field="population")
    pop = pd.to_numeric(df["population"], errors="coerce")
    bad = pop.isna() | (pop < 0)
    if bad.any():
        raise LinkageInputError("not a non-negative number", file=str(p), row=int(bad.to_numpy().nonzero()[0][0]) + 2,
                                field="population")
    df["population"] = pop.astype(int)
    if not any(lv in df.columns for lv in LEVELS):
        raise LinkageInputError("needs an area column (sector, district, npa or la)", file=str(p))
    return df


def population_by(den: pd.DataFrame, level: str, age_bands: list[str] | None = None) -> pd.Series:
    """Residents per area of ``level`` (optionally only the given age bands); empty if not available."""
    if level not in den.columns:
        return pd.Series(dtype=int)
    d = den
    if age_bands is not None:
        if "age_band" not in den.columns:
            return pd.Series(dtype=int)
        d = den[den["age_band"].isin(age_bands)]
    return d.groupby(level)["population"].sum()


def district_to_la(den: pd.DataFrame) -> dict[str, str]:
    if "district" in den.columns and "la" in den.columns:
        return dict(den[["district", "la"]].drop_duplicates("district").itertuples(index=False, name=None))
    return {}
