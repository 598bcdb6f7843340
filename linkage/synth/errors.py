"""Identifier errors: name variants, surname changes, swaps, wrong dates of birth, postcode defects.

Each function takes true values for a set of *identity units* (a police row, an education UPN, a
social-care child id) and returns what the partner recorded. Name errors are mutually exclusive per
unit so each rate is directly observable; every date produced is a valid calendar date (the partner's
system would have refused an impossible one), so a day/month swap only happens when the day is 1–12.
"""

from __future__ import annotations

import numpy as np

from linkage.synth import geography as geo
from linkage.synth import names as nm
from linkage.synth.params import DobErrorMix, PostcodeDefectMix, SourceErrorRates
from linkage.synth.timeutil import days_in_month, days_to_ymd, ymd_to_days

NAME_OK, FORENAME_VARIANT, SURNAME_CHANGE, NAME_SWAP = 0, 1, 2, 3
_SPELLING = [("ph", "f"), ("ck", "k"), ("ie", "y"), ("y", "ie"), ("ee", "i"), ("oo", "u"), ("ll", "l"),
             ("nn", "n"), ("mm", "m"), ("c", "k"), ("k", "c"), ("z", "s"), ("ai", "ay"), ("ey", "y")]


def name_error_kind(rng: np.random.Generator, n: int, rates: SourceErrorRates, minority: np.ndarray,
                    multiplier: float) -> np.ndarray:
    """One exclusive name-error category per unit; rates are raised for minority-ethnic people."""
    base = np.array([rates.forename_variant, rates.surname_change, rates.name_swap])
    scale = np.where(minority, multiplier, 1.0)[:, None]
    p = base[None, :] * scale
    total = p.sum(axis=1, keepdims=True)
    p = np.where(total > 0.9, p * 0.9 / np.maximum(total, 1e-12), p)
    cum = np.cumsum(p, axis=1)
    u = rng.random((n, 1))
    return np.where(u < cum[:, -1:], (u >= cum).sum(axis=1, keepdims=True) + 1, NAME_OK)[:, 0]


def forename_variant(rng: np.random.Generator, name: str) -> str:
    """A transliteration, spelling variant or nickname; a plausible misspelling when none is known."""
    options = nm.variant_lookup().get(name)
    if options:
        return options[int(rng.integers(len(options)))]
    lower = name.lower()
    subs = [(a, b) for a, b in _SPELLING if a in lower[1:]]
    if subs:
        a, b = subs[int(rng.integers(len(subs)))]
        pos = lower.index(a, 1)
        out = name[:pos] + b + name[pos + len(a):]
        if out != name:
            return out
    if len(name) >= 4:  # transpose two inner letters
        i = int(rng.integers(1, len(name) - 2))
        out = name[:i] + name[i + 1] + name[i] + name[i + 2:]
        if out != name:
            return out
    return name + "e" if not name.endswith("e") else name[:-1]


def surname_variant(rng: np.random.Generator, surname: str, middle: str, other_surname: str, culture: str) -> str:
    """Singh/Kaur for the family name (or the reverse), a hyphenation change, or the other parent's name."""
    if culture == "sikh":
        if middle in ("Singh", "Kaur") and surname not in ("Singh", "Kaur"):
            return middle
        if surname in ("Singh", "Kaur"):
            values, p = nm.surnames("sikh")
            family = [v for v in values if v not in ("Singh", "Kaur")]
            return f"{surname} {family[int(rng.integers(len(family)))]}"
    if "-" in surname:
        parts = surname.split("-")
        return parts[int(rng.integers(len(parts)))] if rng.random() < 0.6 else " ".join(parts)
    if other_surname and other_surname != surname:
        return f"{surname}-{other_surname}" if rng.random() < 0.5 else other_surname
    return forename_variant(rng, surname)


def apply_name_errors(rng: np.random.Generator, kind: np.ndarray, forename: np.ndarray, middle: np.ndarray,
                      surname: np.ndarray, other_surname: np.ndarray,
                      culture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fn, sn = forename.copy(), surname.copy()
    for i in np.flatnonzero(kind == FORENAME_VARIANT).tolist():
        fn[i] = forename_variant(rng, forename[i])
    for i in np.flatnonzero(kind == SURNAME_CHANGE).tolist():
        sn[i] = surname_variant(rng, surname[i], middle[i], other_surname[i], culture[i])
    swap = kind == NAME_SWAP
    fn[swap], sn[swap] = surname[swap], forename[swap]
    return fn, sn


def dob_errors(rng: np.random.Generator, dob: np.ndarray, event_day: np.ndarray, rate: float,
               mix: DobErrorMix, placeholder: str) -> np.ndarray:
    """Recorded dates of birth (days). ``placeholder``: 'unknown' (01/01/1900), 'jan1' or 'day15'."""
    n = len(dob)
    out = dob.copy()
    hit = rng.random(n) < rate
    if not hit.any():
        return out
    w = np.array([mix.day_month_swap, mix.digit_typo, mix.year_off_by_one, mix.placeholder, mix.event_date])
    kind = np.full(n, -1)
    kind[hit] = rng.choice(5, size=int(hit.sum()), p=w / w.sum())
    y, m, d = days_to_ymd(dob)
    # a swap is only possible when the day can be a month; otherwise the clerk made a typo
    swappable = (d <= 12) & (d != m)
    kind[(kind == 0) & ~swappable] = 1
    sel = kind == 0
    out[sel] = ymd_to_days(y[sel], d[sel], m[sel])
    sel = kind == 1
    if sel.any():
        out[sel] = _digit_typo(rng, y[sel], m[sel], d[sel])
    sel = kind == 2
    if sel.any():
        yy = y[sel] + np.where(rng.random(int(sel.sum())) < 0.5, -1, 1)
        dd = np.minimum(d[sel], days_in_month(yy, m[sel]))
        out[sel] = ymd_to_days(yy, m[sel], dd)
    sel = kind == 3
    ones = np.ones(int(sel.sum()), dtype=np.int64)
    if placeholder == "unknown":
        out[sel] = ymd_to_days(1900 * ones, ones, ones)
    elif placeholder == "jan1":
        out[sel] = ymd_to_days(y[sel], ones, ones)
    else:
        out[sel] = ymd_to_days(y[sel], m[sel], 15 * ones)
    sel = kind == 4
    out[sel] = event_day[sel]
    return out


def _digit_typo(rng: np.random.Generator, y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Change one digit of the day (if the result is a real date) or else the last digit of the year."""
    n = len(y)
    new_units = (d % 10 + rng.integers(1, 10, size=n)) % 10
    nd = (d // 10) * 10 + new_units
    ok = (nd >= 1) & (nd <= days_in_month(y, m)) & (rng.random(n) < 0.6)
    ny = np.where(ok, y, y - y % 10 + (y % 10 + rng.integers(1, 10, size=n)) % 10)
    nd = np.where(ok, nd, np.minimum(d, days_in_month(ny, m)))
    return ymd_to_days(ny, m, nd)


def postcode_defects(rng: np.random.Generator, postcode: np.ndarray, previous: np.ndarray, area: np.ndarray,
                     rate: float, mix: PostcodeDefectMix, allow_nfa: bool) -> np.ndarray:
    """Missing, NFA (police only) or stale: the previous address, or an unconfirmed postcode nearby."""
    n = len(postcode)
    out = postcode.copy()
    hit = rng.random(n) < rate
    w = np.array([mix.missing, mix.nfa if allow_nfa else 0.0, mix.stale])
    if not allow_nfa:
        w[0] += mix.nfa
    kind = np.full(n, -1)
    kind[hit] = rng.choice(3, size=int(hit.sum()), p=w / w.sum())
    out[kind == 0] = ""
    out[kind == 1] = "NFA"
    stale = kind == 2
    nearby = geo.random_postcodes(rng, area[stale])
    out[stale] = np.where(previous[stale] != "", previous[stale], nearby)
    return out


# --- messy profile (linkage.synth.messy) ----------------------------------------------------------------

def one_char_typo(rng: np.random.Generator, value: str, alphabet: str, keep_space: bool = False) -> str:
    """One substitution, deletion, insertion or adjacent transposition at a random position."""
    if len(value) < 2:
        return value
    positions = [i for i, ch in enumerate(value) if not (keep_space and ch == " ")]
    i = positions[int(rng.integers(len(positions)))]
    kind = int(rng.integers(4))
    cased = str.upper if value[i].isupper() else str.lower
    new = cased(alphabet[int(rng.integers(len(alphabet)))])
    if kind == 0:
        return value[:i] + new + value[i + 1:]
    if kind == 1 and len(value) > 2:
        return value[:i] + value[i + 1:]
    if kind == 2:
        return value[:i] + new + value[i:]
    j = i + 1 if i + 1 < len(value) and not (keep_space and value[i + 1] == " ") else i - 1
    a, b = sorted((i, j))
    return value[:a] + value[b] + value[a] + value[b + 1:] if a >= 0 else value


def digit_typo_string(rng: np.random.Generator, yyyymmdd: str) -> tuple[str, str, str]:
    """One of the eight digits replaced by another; the result need not be a calendar date (month 81)."""
    i = int(rng.integers(8))
    digits = list(yyyymmdd)
    digits[i] = str((int(digits[i]) + int(rng.integers(1, 10))) % 10)
    s = "".join(digits)
    return s[:4], s[4:6], s[6:8]
