"""Serious-violence background calibrated to the SNA profile, and the synthetic population denominators.

The other police scenarios model the careers of at-risk young people and their families; on their own
they get the level of serious violence (SV) roughly right but not its make-up (no sexual offences, too
few domestic ones, no night-time economy). Inside a reporting window (``params.sna.window_start`` to the
extract date) this module measures what those scenarios produced, district by district, and tops it up
with occurrences drawn so that the whole reaches the published figures of the SNA 2024-25 (domain notes
§0): district rates per 1,000 residents (times ``rate_scale``), the domestic / public / sexual / knife
shares, location mix, night-time economy (NTE) share and its weekend pattern, the sex of victims and
suspects, the under-25 share of suspects and the 15:00 peak for young people, and the share of
knife-enabled SV in Leicester City. It is called twice: the second call tops up what the first lost
(occurrences left without a valid victim or suspect).

Rates need denominators: :func:`resident_population` counts the synthetic residents (every household
member, with or without a record) by district, age band and sex at the middle of the window. They are
written to ``population.csv`` and are clearly synthetic; real runs use ONS mid-year estimates.
"""

from __future__ import annotations

import numpy as np

from linkage.synth import geography as geo
from linkage.synth.histories import categorical
from linkage.synth.params import PUBLISHED_SV_RATES, SynthParams
from linkage.synth.population import Households, People, address_at
from linkage.synth.timeutil import day, days_to_ymd

AGE_BANDS = ((0, 9), (10, 17), (18, 24), (25, 34), (35, 49), (50, 64), (65, 120))
# month weights (Jan..Dec): summer peak, with after-school peaks in March and June as in the deep dive
_SEASON = np.array([0.90, 0.88, 1.00, 0.98, 1.05, 1.10, 1.08, 1.06, 1.00, 0.98, 0.96, 0.95])
# NTE days of the week (Mon..Sun), the published shares: Sunday 27%, Saturday 25%, Friday 15%
_NTE_DOW = np.array([0.08, 0.07, 0.08, 0.10, 0.15, 0.25, 0.27])
_NTE_HOURS = np.zeros(24)
_NTE_HOURS[[22, 23, 0, 1, 2, 3, 4]] = [10, 13, 12, 10, 6, 4, 2]
_DAY_U25 = np.array([.2, .1, .1, .1, .1, .1, .3, 1, 2, 3, 3.5, 4, 4.5, 5, 6, 10, 8, 7, 6.5, 6, 5.5, 4.5, .3, .2])
_DAY_ADULT = np.array([.3, .2, .1, .1, .1, .1, .4, 1.5, 2.5, 3, 3.5, 4, 4, 4, 4.5, 5, 5.5, 6.5, 7.5, 8, 8, 7,
                       .4, .3])
# sexual offences against young people in the day: the adult pattern with little at 15:00 (the after-school
# deep dive is 78% assaults with injury and 10% robbery, so hardly any sexual offences then)
_DAY_SEXUAL_U25 = _DAY_ADULT * np.where(np.arange(24) == 15, 0.2, 1.0)
_HOME = np.array([2, 1.5, 1, .6, .4, .4, .6, 1.5, 2.5, 3, 3.5, 4, 4, 4, 4.5, 5, 5.5, 6.5, 7.5, 8, 8, 7, 5, 3])
LOCS = ("DWELLING", "PUBLIC", "HOSPITALITY", "EDUCATION", "OTHER")


def _district_index() -> tuple[np.ndarray, list[str]]:
    names = sorted(set(geo.areas().district))
    lookup = {n: i for i, n in enumerate(names)}
    return np.array([lookup[x] for x in geo.areas().district]), names


def age_band_labels() -> list[str]:
    return [f"{lo}-{hi}" if hi < 120 else f"{lo}+" for lo, hi in AGE_BANDS]


POPULATION_COLUMNS = ["sector", "district", "npa", "la", "age_band", "sex", "population"]


def resident_population(people: People, hh: Households, ref_day: int) -> dict[str, np.ndarray]:
    """Synthetic residents alive on ``ref_day`` by postcode sector, age band and sex (rate denominators)."""
    alive = np.flatnonzero(people.dob <= ref_day)
    area = address_at(people, hh, alive, np.full(len(alive), ref_day))[1]
    age = (ref_day - people.dob[alive]) / 365.25
    band = np.zeros(len(alive), np.int64)
    for i, (lo, _hi) in enumerate(AGE_BANDS):
        band[age >= lo] = i
    key = (area * len(AGE_BANDS) + band) * 2 + people.male[alive]
    uniq, counts = np.unique(key, return_counts=True)
    a, rest = uniq // (2 * len(AGE_BANDS)), uniq % (2 * len(AGE_BANDS))
    t = geo.areas()
    return {"sector": t.sector[a], "district": t.district[a], "npa": t.npa[a], "la": t.la[a],
            "age_band": np.array(age_band_labels(), dtype=object)[rest // 2],
            "sex": np.where(rest % 2 == 1, "M", "F").astype(object), "population": counts}


def merge_population(tables: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Sum per-batch population tables into one, sorted by sector, age band and sex."""
    totals: dict[tuple, int] = {}
    for t in tables:
        keys = zip(*(t[c].tolist() for c in POPULATION_COLUMNS[:-1]), strict=True)
        for k, n in zip(keys, t["population"].tolist(), strict=True):
            totals[k] = totals.get(k, 0) + int(n)
    items = sorted(totals.items())
    cols = list(zip(*[k for k, _ in items], strict=True)) if items else [()] * 6
    out = {c: np.array(v, dtype=object) for c, v in zip(POPULATION_COLUMNS[:-1], cols, strict=True)}
    out["population"] = np.array([n for _, n in items], dtype=np.int64)
    return out


def _need(target: float, existing: float) -> float:
    return max(0.0, target - existing)


def background(rng: np.random.Generator, occ, people: People, hh: Households, params: SynthParams,
               offences: dict[str, int], sv_codes: np.ndarray, carrier: np.ndarray | None = None) -> None:
    """Top the window's SV occurrences up to the calibration targets (adds to ``occ`` in place).

    ``carrier``: per person, the relative chance of being a knife carrier (police.py), used for the
    suspects of knife-enabled occurrences."""
    s = params.sna
    lo, hi = day(s.window_start), day(params.extract_date)
    if not s.enabled or hi <= lo:
        return
    areas = geo.areas()
    dist_of_area, dist_names = _district_index()
    # --- what the other scenarios produced in the window --------------------------------------------
    cols = {k: np.concatenate([o[k] for o in occ.occ]) for k in ("day", "minute", "offence", "location", "area",
                                                                 "da", "knife")} if occ.occ else None
    if cols is None:
        return
    inwin = (cols["day"] >= lo) & (cols["day"] <= hi) & np.isin(cols["offence"], sv_codes)
    e = {k: v[inwin] for k, v in cols.items()}
    E = int(inwin.sum())
    hour = e["minute"] // 60
    night = (hour >= 22) | (hour < 5)
    e_loc = {c: int((e["location"] == c).sum()) for c in LOCS}
    e_pubhosp = np.isin(e["location"], ["PUBLIC", "HOSPITALITY"])
    # --- how many to add, per district ----------------------------------------------------------------
    mid = (lo + hi) // 2
    alive = np.flatnonzero(people.dob <= mid)
    res_area = address_at(people, hh, alive, np.full(len(alive), mid))[1]
    res_dist = dist_of_area[res_area]
    years = (hi - lo + 1) / 365.25
    existing_d = np.bincount(dist_of_area[e["area"]], minlength=len(dist_names))
    pop_d = np.bincount(res_dist, minlength=len(dist_names))
    target_d = np.array([s.rate_scale * PUBLISHED_SV_RATES.get(n, 30.0) / 1000 * pop_d[i] * years / 1.5
                         for i, n in enumerate(dist_names)])
    B_d = rng.poisson(np.maximum(target_d - existing_d, 0))
    B = int(B_d.sum())
    if B == 0:
        return
    T = E + B
    district = np.repeat(np.arange(len(dist_names)), B_d)
    # --- location, domestic, sexual, NTE, knife: shares of the whole solved for the top-up -----------
    shares = {"DWELLING": s.dwelling_share, "PUBLIC": s.public_share, "HOSPITALITY": s.hospitality_share,
              "EDUCATION": s.education_share}
    shares["OTHER"] = max(0.0, 1 - sum(shares.values()))
    need = np.array([_need(shares[c] * T, e_loc[c]) for c in LOCS]) + 1e-9
    loc = np.array(LOCS, dtype=object)[categorical(rng, np.tile(need / need.sum(), (B, 1)))]
    dwelling = loc == "DWELLING"
    u = rng.random((B, 6))
    p_da = min(1.0, _need(s.domestic_share * T, e["da"].sum()) / max(1, dwelling.sum()))
    da = dwelling & (u[:, 0] < p_da)
    p_sex = min(1.0, s.sexual_share * T / max(1, (~da).sum()))
    sexual = ~da & ~np.isin(loc, ["HOSPITALITY"]) & (u[:, 1] < p_sex)
    pubhosp = np.isin(loc, ["PUBLIC", "HOSPITALITY"])
    p_nte = min(1.0, _need(s.nte_share * T, (night & e_pubhosp).sum()) / max(1, (pubhosp & ~sexual).sum()))
    nte = pubhosp & ~sexual & (u[:, 2] < p_nte)
    pub_total = e_loc["PUBLIC"] + int((loc == "PUBLIC").sum())
    city = np.array([dist_names[i] == "Leicester" for i in district])
    public = loc == "PUBLIC"
    p_kp = _need(s.knife_share_public * pub_total, (e["knife"] & (e["location"] == "PUBLIC")).sum())
    p_kp /= max(1, (public & ~sexual).sum())
    p_kn = _need(s.knife_share * T - s.knife_share_public * pub_total,
                 (e["knife"] & (e["location"] != "PUBLIC")).sum()) / max(1, (~public & ~sexual & ~da).sum())
    p_knife = np.where(public, p_kp, p_kn) * (~sexual & ~da)
    # weight the city so that knife-enabled SV as a whole lands at the published share in Leicester City
    # (``knife_in_city``), whatever the other scenarios put there: (E_c + x B_c) / (E_k + x B_c + B_n) = t
    e_city = dist_of_area[e["area"]] == dist_names.index("Leicester")
    e_k, e_c = float(e["knife"].sum()), float((e["knife"] & e_city).sum())
    b_c, b_n = float(p_knife[city].sum()), float(p_knife[~city].sum())
    t = s.knife_in_city
    city_mult = (t * (e_k + b_n) - e_c) / max(b_c * (1 - t), 1e-9) if b_c > 0 else 1.0
    city_mult = float(np.clip(city_mult, 0.05, 20.0))
    p_knife = p_knife * np.where(city, city_mult, 1.0) * (b_c + b_n) / max(city_mult * b_c + b_n, 1e-9)
    knife = ~sexual & ~da & (u[:, 3] < p_knife)
    # --- offence type ---------------------------------------------------------------------------------
    K = offences
    # No GBH, attempted murder or murder here: those index offences belong to the high-harm scenario,
    # which places them after a prolific career (the published 12.2 prior offences).
    mixes: dict[str, dict[str, float]] = {
        "da": dict(abh=30, harassment=18, coercive_control=25, stalking=8, malicious_comms=12, threats_to_kill=7),
        "sexual": dict(rape=35, sexual_assault_f=50, sexual_assault_m=15),
        "nte": dict(abh=66, affray=17, robbery=10, threats_to_kill=3, harassment=4),
        "knife": dict(abh=55, robbery=30, threats_to_kill=12, affray=3),
        "other": dict(abh=33, harassment=22, malicious_comms=12, stalking=7, robbery=5, threats_to_kill=5,
                      affray=4, kidnapping=0.6, business_robbery=0.6),
    }
    kind = np.where(da, "da", np.where(sexual, "sexual", np.where(nte, "nte", np.where(knife, "knife", "other"))))
    offence = np.zeros(B, np.int64)
    for k, mix in mixes.items():
        idx = np.flatnonzero(kind == k)
        if len(idx):
            w = np.zeros(len(K))
            for name, v in mix.items():
                w[K[name]] = v
            offence[idx] = categorical(rng, np.tile(w / w.sum(), (len(idx), 1)))
    # --- when -----------------------------------------------------------------------------------------
    days = np.arange(lo, hi + 1)
    _y, month, _d = days_to_ymd(days)
    dow = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    base_w = _SEASON[month - 1] * (1 + s.yearly_growth) ** ((days - lo) / 365.25)
    d = days[rng.choice(len(days), size=B, p=base_w / base_w.sum())]
    if nte.any():
        w = base_w * _NTE_DOW[dow]
        d[nte] = days[rng.choice(len(days), size=int(nte.sum()), p=w / w.sum())]
    # --- who: victims from the district's residents, suspects from its residents too -----------------
    victim = np.full(B, -1, np.int64)
    suspect = np.full(B, -1, np.int64)
    age_of = lambda p, dd: (dd - people.dob[p]) / 365.25  # noqa: E731
    res_age = (mid - people.dob[alive]) / 365.25
    res_male = people.male[alive]
    # (victim male share, victim age weight, suspect male share, suspect age weight) per kind
    young = lambda a: np.exp(-0.5 * ((a - 17) / 2.5) ** 2) + 0.02  # noqa: E731
    nte_age = lambda a: np.exp(-0.5 * ((a - 20) / 3) ** 2) + 0.03  # noqa: E731
    adult = lambda a: (a >= 18) * 1.0 + 1e-6  # noqa: E731
    teen_adult = lambda a: (a >= 12) * (1.0 + 1.5 * (a < 30)) + 1e-6  # noqa: E731
    flat = lambda a: (a >= 10) * 1.0 + 1e-6  # noqa: E731
    older = lambda a: (a >= 10) * (1.0 + 3.0 * (a >= 25)) + 1e-6  # noqa: E731
    roles = {"da": (0.12, adult, 0.85, adult), "sexual": (0.15, teen_adult, 0.97, older),
             "nte": (0.70, nte_age, 0.80, nte_age), "knife": (0.75, young, 0.95, young),
             "other": (0.70, flat, 0.50, older)}
    for k, (v_male, v_age, s_male, s_age) in roles.items():
        for di in range(len(dist_names)):
            idx = np.flatnonzero((kind == k) & (district == di))
            pool = np.flatnonzero(res_dist == di)
            if not len(idx) or len(pool) < 2:
                continue
            if k == "knife" and dist_names[di] != "Leicester":
                s_age = older  # the young knife carriers are the city's (the SNA's under-25 cohort: 75%+ city)
            elif k == "knife":
                s_age = young
            for arr, male_share, agew in ((victim, v_male, v_age), (suspect, s_male, s_age)):
                m = res_male[pool]
                w = agew(res_age[pool]) * np.where(m, male_share / max(1, m.sum()),
                                                   (1 - male_share) / max(1, (~m).sum()))
                if k == "knife" and arr is suspect:  # knife carriers are at-risk young people, as the SNA found
                    w = w * np.exp(0.8 * np.clip(people.risk[alive[pool]], -3, 4))
                    if carrier is not None:
                        w = w * carrier[alive[pool]]
                arr[idx] = alive[pool[rng.choice(len(pool), size=len(idx), p=w / w.sum())]]
    # domestic abuse: the victim's partner where there is one
    for i in np.flatnonzero(da & (victim >= 0)):
        h = people.hh[victim[i]]
        partner = hh.father[h] if victim[i] == hh.mother[h] else hh.mother[h]
        if partner >= 0 and not people.is_child[victim[i]]:
            suspect[i] = partner
    ok = (victim >= 0) & (suspect >= 0) & (victim != suspect)
    ok &= (age_of(np.maximum(victim, 0), d) >= 5) & (age_of(np.maximum(suspect, 0), d) >= 10)
    # --- time of day: NTE at night, young people's daytime peak at 15:00, evenings at home ------------
    minute = np.zeros(B, np.int64)
    v_age_arr = age_of(np.maximum(victim, 0), d)
    s_age_arr = age_of(np.maximum(suspect, 0), d)
    u25 = (v_age_arr < 25) | (s_age_arr < 25)
    # sexual offences against adults at home hours; against young people, their daytime pattern
    day_out = ~nte & ~dwelling & ~da & ~(sexual & ~u25)
    for mask, hours in ((nte, _NTE_HOURS), (~nte & (dwelling | da | (sexual & ~u25)), _HOME),
                        (day_out & u25 & ~sexual, _DAY_U25), (day_out & u25 & sexual, _DAY_SEXUAL_U25),
                        (day_out & ~u25, _DAY_ADULT)):
        n = int(mask.sum())
        if n:
            h = categorical(rng, np.tile(hours / hours.sum(), (n, 1)))
            minute[mask] = h * 60 + rng.integers(0, 60, size=n)
    # after school (15:00-15:59, weekdays): mostly assaults with injury, as the deep dive found
    school = ~da & ~sexual & ~nte & (minute // 60 == 15) & ((v_age_arr < 18) | (s_age_arr < 18))
    recast = school & (rng.random(B) < 0.9)
    offence[recast] = np.where(rng.random(int(recast.sum())) < 0.85, K["abh"], K["robbery"])
    weekend = dow_of(d) >= 5
    move = school & weekend & (rng.random(B) < 0.8)
    d[move] -= dow_of(d[move]) - 4  # to the Friday before
    d = np.clip(d, lo, hi)
    rel = np.where(da, "PARTNER", np.where(rng.random(B) < s.stranger_share, "STRANGER",
                                           np.where(rng.random(B) < 0.9, "ACQUAINTANCE", "NOT_RECORDED")))
    rel = np.where(da & (rng.random(B) < 0.15), "FAMILY", rel).astype(object)
    idx = np.flatnonzero(ok)
    vic, sus = victim[idx], suspect[idx]
    area = address_at(people, hh, vic, d[idx])[1]
    # the victim was drawn from the district's residents at mid-window; one who moved district by the day
    # of the occurrence has it at their mid-window home, so every district receives its calibrated count
    moved = dist_of_area[area] != district[idx]
    area[moved] = address_at(people, hh, vic[moved], np.full(int(moved.sum()), mid))[1]
    alcohol = (nte[idx] | (loc[idx] == "HOSPITALITY")) & (rng.random(len(idx)) < 0.6) | (
        da[idx] & (rng.random(len(idx)) < 0.3))
    ids = occ.add(d[idx], minute[idx], offence[idx], loc[idx], area, da=da[idx], knife=knife[idx],
                  alcohol=alcohol, relationship=rel[idx])
    occ.involve(ids, vic, "VICTIM")
    occ.involve(ids, sus, np.where(rng.random(len(idx)) < 0.4, "OFFENDER", "SUSPECT"))
    _ = areas


def dow_of(days: np.ndarray) -> np.ndarray:
    """Day of the week, 0 = Monday."""
    return (np.asarray(days) + 3) % 7
