"""Uniqueness of token combinations: how many records stand alone on a set of columns.

Tokens are one-to-one with clear values, so a record unique on (date of birth, sex, district) tokens is
unique on the clear values too: anyone who learns those values for one record (by an attack, or by
knowing a person) singles it out. Reported per combination as the share of records with k = 1 and
k < 5 (k-anonymity counts), over one identifier set per record.
"""

from __future__ import annotations

import pandas as pd

K_THRESHOLD = 5

# Quasi-identifier sets a data-protection officer recognises, as token columns.
COMBINATIONS: dict[str, list[str]] = {
    "surname + year of birth": ["surname__exact", "dob__year"],
    "year of birth + sex + postcode district": ["dob__year", "sex__exact", "postcode__district"],
    "date of birth + sex + postcode district": ["dob__exact", "sex__exact", "postcode__district"],
    "given name + surname + date of birth": ["given_name__exact", "surname__exact", "dob__exact"],
}


def uniqueness(records: pd.DataFrame) -> list[dict]:
    """k-anonymity counts per combination whose columns all exist; ``records`` is one row per record."""
    out = []
    n = len(records)
    for label, cols in COMBINATIONS.items():
        if not set(cols) <= set(records.columns) or n == 0:
            continue
        frame = records[cols].astype("string").fillna("<missing>")
        k = frame.groupby(cols, dropna=False)[cols[0]].transform("size")
        out.append({"combination": label, "columns": cols, "records": n,
                    "unique_share": round(float((k == 1).mean()), 4),
                    f"k_below_{K_THRESHOLD}_share": round(float((k < K_THRESHOLD).mean()), 4),
                    "median_k": float(k.median())})
    return out
