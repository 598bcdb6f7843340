"""Vectorised date helpers: dates are int64 days since 1970-01-01, times are int64 minutes."""

from __future__ import annotations

import datetime as dt

import numpy as np

EPOCH = dt.date(1970, 1, 1)
NEVER = np.int64(10**6)  # a day far after any extract (year ~4700): "no such event"


def day(d: dt.date) -> int:
    return (d - EPOCH).days


def ymd_to_days(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    months = (np.asarray(y, dtype=np.int64) - 1970) * 12 + (np.asarray(m, dtype=np.int64) - 1)
    first = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return first + np.asarray(d, dtype=np.int64) - 1


def days_to_ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dd = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    months = dd.astype("datetime64[M]")
    years = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    dom = (dd - months.astype("datetime64[D]")).astype(np.int64) + 1
    return years, month, dom


def days_in_month(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    start = ymd_to_days(y, m, np.ones_like(m))
    nxt = ymd_to_days(y + (m == 12), np.where(m == 12, 1, m + 1), np.ones_like(m))
    return nxt - start


def add_years(days: np.ndarray, years: np.ndarray | float) -> np.ndarray:
    return np.asarray(days, dtype=np.int64) + np.round(np.asarray(years) * 365.25).astype(np.int64)


def iso(days: np.ndarray) -> np.ndarray:
    """YYYY-MM-DD strings."""
    return np.datetime_as_string(np.asarray(days, dtype=np.int64).astype("datetime64[D]"), unit="D")


def dmy(days: np.ndarray) -> list[str]:
    """DD/MM/YYYY strings."""
    return [f"{s[8:10]}/{s[5:7]}/{s[0:4]}" for s in iso(days).tolist()]


def iso_minutes(minutes: np.ndarray) -> list[str]:
    """YYYY-MM-DD HH:MM strings."""
    s = np.datetime_as_string(np.asarray(minutes, dtype=np.int64).astype("datetime64[m]"), unit="m")
    return [x.replace("T", " ") for x in s.tolist()]


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))
