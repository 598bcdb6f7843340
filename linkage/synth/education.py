"""Education histories: annual census returns, suspensions and permanent exclusions, NEET records.

Census rows run from reception to year 11 (or 13 for those staying on) within the coverage window, one
per January census. Attendance, SEN, FSM and alternative provision follow the child's traits; a
permanent exclusion moves the pupil to a PRU. A few pupils appear first under a temporary UPN
(``unit`` 1); an adopted pupil gets a new UPN from the adoption date (``unit`` 2).
"""

from __future__ import annotations

import numpy as np

from linkage.synth.histories import Rows, Traits, categorical, concat_rows, take, uniform_days
from linkage.synth.params import SynthParams
from linkage.synth.population import Households, People
from linkage.synth.timeutil import add_years, day, days_to_ymd, sigmoid, ymd_to_days

REASONS = np.array(["PP", "PA", "VP", "VA", "OW", "BU", "RA", "LG", "DS", "SM", "DA", "DB", "MT", "DM", "TH"],
                   dtype=object)
_REASON_BASE = np.array([20, 12, 10, 10, 2, 5, 2, 1, 0.5, 2, 3, 30, 2, 4, 3], dtype=float)
NEET_CODES = np.array(["540", "550", "610", "630", "810"], dtype=object)


def _census_day(year: np.ndarray) -> np.ndarray:
    """Third Thursday of January (the spring census day)."""
    jan1 = ymd_to_days(year, np.ones_like(year), np.ones_like(year))
    weekday = (jan1 + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    first_thursday = jan1 + (3 - weekday) % 7
    return first_thursday + 14


def education_history(rng: np.random.Generator, people: People, hh: Households, traits: Traits,
                      params: SynthParams) -> Rows:
    P = len(people)
    r = people.risk
    y, m, _ = days_to_ymd(people.dob)
    reception = np.where(m >= 9, y + 4, y + 3)   # academic year (Sept) of reception
    in_school = people.is_child & (rng.random(P) >= params.no_school_record)
    stay_on = rng.random(P) < sigmoid(0.2 - 0.8 * r)
    last_nc = np.where(stay_on, 13, 11)
    first_ay = params.education_start.year
    last_ay = params.extract_date.year - 1   # census days after the extract date are dropped below
    lo = np.maximum(reception, first_ay)
    hi = np.minimum(reception + last_nc, last_ay)
    n = np.where(in_school, np.maximum(hi - lo + 1, 0), 0)
    person = np.repeat(np.arange(P), n)
    ay = np.repeat(lo, n) + (np.arange(len(person)) - np.repeat(np.cumsum(n) - n, n))
    nc = ay - reception[person]
    census = _census_day(ay + 1)
    keep = census <= day(params.extract_date)
    person, ay, nc, census = person[keep], ay[keep], nc[keep], census[keep]
    pr = r[person]

    # permanent exclusion (secondary) sends the pupil to alternative provision from the next census
    perm = in_school & (rng.random(P) < sigmoid(-5.6 + 1.3 * r))
    perm_nc = rng.integers(7, 11, size=P)
    ap = (nc > perm_nc[person]) & perm[person]
    ap |= (nc >= 9) & (pr > 2.2) & (rng.random(len(person)) < 0.25)
    school_urn = np.where(nc <= 6, 120000 + (person * 7 + 13) % 9000, 137000 + (person * 3 + 5) % 2000)
    urn = np.where(ap, 139700 + person % 40, school_urn).astype(str)

    sen_from = rng.integers(0, 8, size=P)
    sen_now = (traits.sen_need[person] != "") & (nc >= sen_from[person])
    sen_prov = np.where(sen_now, np.where(traits.ehcp[person], "E", "K"), "N")
    # eligibility lapses in some years; a few others qualify briefly (a parent's job loss)
    low = hh.low_income[people.hh[person]]
    u = rng.random(len(person))
    fsm = (low & (u >= 0.15)) | (~low & (u < 0.02))
    possible = rng.integers(300, 335, size=len(person))
    # absence is mostly a habit of the child (drawn once), plus a little year-to-year noise
    habit = rng.beta(1.5, 30, size=P)
    secondary_risk = 0.04 * np.clip(pr, 0, None) * (nc >= 7)
    absence_rate = np.clip(habit[person] + rng.normal(0, 0.01, size=len(person)) + secondary_risk
                           + 0.08 * traits.mh[person] + 0.15 * ap, 0, 0.9)
    missed = np.round(possible * absence_rate).astype(np.int64)
    nc_text = np.where(nc == 0, "R", nc.astype(str))
    census_rows = _rows(person, census, "CENSUS", urn=urn, nc_year=nc_text, sen_provision=sen_prov,
                        sen_primary_need=np.where(sen_now, traits.sen_need[person], ""),
                        fsm_eligible=fsm.astype(int).astype(str), sessions_possible=possible.astype(str),
                        sessions_missed=missed.astype(str), ap_placement=ap.astype(int).astype(str))
    secondary = nc >= 6
    rows = concat_rows([census_rows, _exclusions(rng, take(census_rows, secondary), people, traits, perm,
                                                 perm_nc, params), _neet(rng, people, traits, in_school, params)])
    rows["unit"] = np.where(rows["day"] >= people.change_day[rows["person"]], 2, 0)
    rows["unit"][~people.adopted[rows["person"]]] = 0
    _temporary_upns(rng, rows, params.education.duplicate_id)
    return rows


def _rows(person, day_, record_type, **cols) -> Rows:
    n = len(person)
    out = {"person": person, "day": day_, "record_type": np.full(n, record_type, dtype=object)}
    for name in ("urn", "nc_year", "sen_provision", "sen_primary_need", "fsm_eligible", "sessions_possible",
                 "sessions_missed", "ap_placement", "exclusion_category", "exclusion_reason", "neet_activity"):
        out[name] = np.asarray(cols.get(name, np.full(n, "", dtype=object)), dtype=object)
    return out


def _exclusions(rng, census: Rows, people: People, traits: Traits, perm, perm_nc, params) -> Rows:
    """Suspensions in the school year of a secondary census row; one permanent exclusion if drawn."""
    person = census["person"]
    nc = census["nc_year"].astype(int)
    r = people.risk[person]
    n = rng.poisson(np.clip(np.exp(-2.9 + 1.0 * r + 0.5 * traits.gang[person]), 0, 6))
    n = np.maximum(n, perm[person] & (nc == perm_nc[person]))
    rep = np.repeat(np.arange(len(person)), n)
    p = person[rep]
    # a school year runs from the September before the census to the July after it
    d = census["day"][rep] + rng.integers(-130, 180, size=len(rep))
    is_perm = perm[p] & (nc[rep] == perm_nc[p])
    first_perm = is_perm & ~np.r_[False, is_perm[1:] & (p[1:] == p[:-1])]
    w = np.tile(_REASON_BASE, (len(rep), 1))
    w[:, 4] += 15 * traits.gang[p]          # OW weapon
    w[:, 10] += 20 * traits.substance[p]    # DA drug/alcohol
    w[:, 1] += 10 * (r[rep] > 1.5)
    reasons = REASONS[categorical(rng, w)]
    rows = _rows(p, d, "EXCLUSION", urn=census["urn"][rep], nc_year=census["nc_year"][rep],
                 sen_provision=census["sen_provision"][rep], sen_primary_need=census["sen_primary_need"][rep],
                 fsm_eligible=census["fsm_eligible"][rep], exclusion_category=np.where(first_perm, "PERM", "SUSP"),
                 exclusion_reason=reasons)
    return take(rows, rows["day"] <= day(params.extract_date))


def _neet(rng, people: People, traits: Traits, in_school, params: SynthParams) -> Rows:
    r = people.risk
    neet = in_school & (rng.random(len(people)) < sigmoid(-2.4 + 0.8 * r + 0.5 * traits.substance))
    n = np.where(neet, 1 + rng.poisson(1.0, size=len(people)), 0)
    p = np.repeat(np.arange(len(people)), n)
    d = uniform_days(rng, add_years(people.dob[p], 16.2), add_years(people.dob[p], 18.9))
    keep = (d <= day(params.extract_date)) & (d >= day(params.education_start))
    p, d = p[keep], d[keep]
    codes = NEET_CODES[categorical(rng, np.tile([5, 2, 1, 1, 3], (len(p), 1)).astype(float))]
    return _rows(p, d, "NEET", neet_activity=codes)


def _temporary_upns(rng, rows: Rows, rate: float) -> None:
    """A share of pupils appear under a temporary UPN for their first record(s)."""
    person, base = rows["person"], rows["unit"] == 0
    census = base & (rows["record_type"] == "CENSUS")
    pupils, counts = np.unique(person[census], return_counts=True)
    chosen = pupils[(counts >= 2) & (rng.random(len(pupils)) < rate)]
    for p in chosen.tolist():
        idx = np.flatnonzero((person == p) & census)
        ordered = idx[np.argsort(rows["day"][idx], kind="stable")]
        rows["unit"][ordered[: rng.integers(1, min(3, len(ordered)))]] = 1
