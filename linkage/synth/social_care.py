"""Children's social-care histories: CIN episodes, assessments with factor codes, CP plans, looked-after
episodes (with adoption), missing episodes.

Household facts become B/C-suffix assessment factors (3B domestic abuse, 2B parental drug misuse, 4B
parental mental health), child traits become A-suffix ones. A child adopted from care gets a new
surname, home and LA child id from the adoption date (``unit`` 2); a few children get a second child id
for a later episode (``unit`` 1, the partner's duplicate records).
"""

from __future__ import annotations

import numpy as np

from linkage.synth import geography as geo
from linkage.synth import names as nm
from linkage.synth.histories import Rows, Traits, categorical, concat_rows, uniform_days
from linkage.synth.params import SynthParams
from linkage.synth.population import Households, People
from linkage.synth.timeutil import NEVER, add_years, day, sigmoid

NEEDS = np.array(["N0", "N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8"], dtype=object)
CP_CATEGORIES = np.array(["NEG", "PHY", "SAB", "EMO", "MUL"], dtype=object)


def _rows(person, start, end, record_type, **cols) -> Rows:
    n = len(person)
    out = {"person": person, "day": start, "start": start, "end": end,
           "record_type": np.full(n, record_type, dtype=object)}
    for name in ("primary_need", "assessment_factors", "cp_category", "legal_status", "substance_misuse"):
        out[name] = cols.get(name, np.full(n, "", dtype=object))
    return out


def _add_homes(rng: np.random.Generator, hh: Households, n: int) -> np.ndarray:
    """Append ``n`` adoptive homes (no moves, low adversity); returns their indices."""
    table = geo.areas()
    area = rng.choice(len(table), size=n, p=table.weight)
    first = len(hh.area)
    hh.area = np.concatenate([hh.area, np.repeat(area[:, None], 3, axis=1)])
    pcs = geo.random_postcodes(rng, area)
    hh.postcode = np.concatenate([hh.postcode, np.repeat(pcs[:, None], 3, axis=1)])
    hh.move = np.concatenate([hh.move, np.full((n, 2), NEVER)])
    for name in ("ethnicity",):
        setattr(hh, name, np.concatenate([getattr(hh, name), np.zeros(n, dtype=np.int64)]))
    hh.adversity = np.concatenate([hh.adversity, np.full(n, -1.0)])
    for name in ("parental_da", "parental_substance", "parental_mh", "low_income"):
        setattr(hh, name, np.concatenate([getattr(hh, name), np.zeros(n, bool)]))
    hh.father = np.concatenate([hh.father, np.full(n, -1)])
    return np.arange(first, first + n)


def social_care_history(rng: np.random.Generator, people: People, hh: Households, traits: Traits,
                        params: SynthParams) -> tuple[Rows, Rows]:
    """Returns (social-care rows, missing episodes as rows with person/day for police reports)."""
    start, end = day(params.social_care_start), day(params.extract_date)
    h = people.hh
    da, sub, pmh = hh.parental_da[h], hh.parental_substance[h], hh.parental_mh[h]
    r = people.risk
    eighteen = add_years(people.dob, 18)
    window_lo, window_hi = np.maximum(people.dob, start), np.minimum(eighteen, end)
    eligible = people.is_child & (window_hi > window_lo + 30)
    cin = eligible & (rng.random(len(people)) < sigmoid(-2.2 + 0.8 * r + 1.2 * da + 0.8 * sub + 0.4 * pmh))

    # CIN episodes
    n_ep = np.where(cin, 1 + rng.poisson(np.where(r > 1, 0.6, 0.2)), 0)
    person = np.repeat(np.arange(len(people)), n_ep)
    ep_start = uniform_days(rng, window_lo[person], window_hi[person] - 30)
    ep_end = ep_start + rng.integers(60, 720, size=len(person))
    age = (ep_start - people.dob[person]) / 365.25
    one = np.ones(len(person))
    w = np.stack([
        0.2 * one,                                   # N0 not stated
        1.0 + 2.5 * da[person] + 1.0 * sub[person],                  # N1 abuse or neglect
        0.3 + 2.0 * traits.ehcp[person],                             # N2 child's disability
        0.2 + 1.0 * pmh[person],                                     # N3 parental illness/disability
        0.5 + 0.4 * sub[person],                                     # N4 family in acute stress
        0.5 + 0.6 * da[person],                                      # N5 family dysfunction
        np.where(age >= 11, 0.3 + 1.2 * np.clip(r[person], 0, None), 0.0),  # N6 socially unacceptable
        0.15 + 0.3 * hh.low_income[h][person],                       # N7 low income
        0.3 * one,                                                   # N8 absent parenting
    ], axis=1)
    need = NEEDS[categorical(rng, w)]
    open_ep = ep_end > end
    cin_rows = _rows(person, ep_start, np.where(open_ep, -1, ep_end), "CIN_EPISODE", primary_need=need)

    # assessments: one or two per episode, factor codes from the household and the child's traits
    n_as = 1 + (rng.random(len(person)) < 0.3)
    a_idx = np.repeat(np.arange(len(person)), n_as)
    a_person = person[a_idx]
    a_day = np.minimum(ep_start[a_idx] + rng.integers(7, 45, size=len(a_idx)), end)
    a_age = (a_day - people.dob[a_person]) / 365.25
    factors = _assessment_factors(rng, a_person, a_age, need[a_idx], people, hh, traits)
    as_rows = _rows(a_person, a_day, np.full(len(a_idx), -1), "ASSESSMENT", assessment_factors=factors)

    # child protection plans
    cp = (need == "N1") & (rng.random(len(person)) < 0.3)
    cp_start = np.minimum(ep_start[cp] + rng.integers(20, 60, size=int(cp.sum())), end)
    cp_end = cp_start + rng.integers(90, 600, size=len(cp_start))
    cp_w = np.stack([np.full(len(cp_start), 3.5), np.full(len(cp_start), 1.0), np.full(len(cp_start), 0.3),
                     1.0 + 4.0 * da[person[cp]], np.full(len(cp_start), 0.7)], axis=1)
    cp_rows = _rows(person[cp], cp_start, np.where(cp_end > end, -1, cp_end), "CP_PLAN",
                    cp_category=CP_CATEGORIES[categorical(rng, cp_w)])

    cla_rows, adopted = _looked_after(rng, people, traits, person, ep_start, da, sub, end)
    missing_rows, missing_all = _missing(rng, people, traits, cin, window_hi, end)
    _adopt(rng, people, hh, adopted)
    post = _post_adoption(rng, people, end)
    rows = concat_rows([cin_rows, as_rows, cp_rows, cla_rows, missing_rows, post])
    rows["unit"] = np.zeros(len(rows["person"]), dtype=np.int64)
    rows["unit"][rows["day"] >= people.change_day[rows["person"]]] = 2
    rows["unit"][~people.adopted[rows["person"]]] = 0
    _second_ids(rng, rows, params.social_care.duplicate_id)
    return rows, missing_all


def _assessment_factors(rng, person, age, need, people: People, hh: Households, traits: Traits) -> np.ndarray:
    n = len(person)
    h = people.hh[person]
    u = rng.random((n, 22))
    checks = [
        ("3B", hh.parental_da[h] & (u[:, 0] < 0.8)), ("3A", hh.parental_da[h] & (u[:, 1] < 0.15)),
        ("3C", hh.parental_da[h] & (u[:, 2] < 0.1)),
        ("2B", hh.parental_substance[h] & (u[:, 3] < 0.75)), ("1B", hh.parental_substance[h] & (u[:, 4] < 0.4)),
        ("4B", hh.parental_mh[h] & (u[:, 5] < 0.7)),
        ("4A", traits.mh[person] & (age >= 10) & (u[:, 6] < 0.6)),
        ("15A", traits.self_harm[person] & (age >= 11) & (u[:, 7] < 0.5)),
        ("1A", traits.substance[person] & (age >= 12) & (u[:, 8] < 0.3)),
        ("2A", traits.substance[person] & (age >= 12) & (u[:, 9] < 0.5)),
        ("10A", traits.missing[person] & (age >= 11) & (u[:, 10] < 0.6)),
        ("11A", traits.cse[person] & (age >= 11) & (u[:, 11] < 0.6)),
        ("24A", traits.cce[person] & (age >= 12) & (u[:, 12] < 0.6)),
        ("13A", traits.gang[person] & (age >= 12) & (u[:, 13] < 0.5)),
        ("14A", (people.risk[person] > 1.5) & (age >= 11) & (u[:, 14] < 0.4)),
        ("16A", (need == "N1") & (u[:, 15] < 0.3)), ("17A", (need == "N1") & (u[:, 16] < 0.15)),
        ("18C", (need == "N1") & (u[:, 17] < 0.08)), ("19C", (need == "N1") & (u[:, 18] < 0.02)),
        ("5A", np.isin(traits.sen_need[person], ["MLD", "SLD", "PMLD"]) & (u[:, 19] < 0.5)),
        ("7A", hh.parental_mh[h] & (age >= 9) & (u[:, 20] < 0.1)),
        ("12A", traits.cce[person] & (age >= 12) & (u[:, 21] < 0.1)),
    ]
    present = np.stack([c for _, c in checks], axis=1)
    codes = np.array([c for c, _ in checks], dtype=object)
    out = np.array([";".join(codes[row]) or "21" for row in present], dtype=object)
    return out


def _looked_after(rng, people: People, traits: Traits, ep_person, ep_start, da, sub, end):
    first = np.unique(ep_person, return_index=True)
    person, first_start = first[0], ep_start[first[1]]
    r = people.risk[person]
    lac = rng.random(len(person)) < sigmoid(-3.1 + 0.7 * r + 0.7 * da[person] + 0.8 * sub[person])
    person, la_start = person[lac], np.minimum(first_start[lac] + rng.integers(0, 200, size=int(lac.sum())), end)
    age = (la_start - people.dob[person]) / 365.25
    adopted = (age < 4) & (rng.random(len(person)) < 0.35)
    n_pl = np.where(adopted, 2, 1 + rng.poisson(np.clip(0.5 + 0.5 * r[lac], 0, 3)))
    rep = np.repeat(np.arange(len(person)), n_pl)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(n_pl) - n_pl, n_pl)
    lengths = rng.integers(30, 420, size=len(rep))
    offset = np.cumsum(lengths) - lengths
    offset -= np.repeat(offset[np.cumsum(n_pl) - n_pl], n_pl)
    s = la_start[rep] + offset
    e = s + lengths
    p = person[rep]
    age_at = (s - people.dob[p]) / 365.25
    status = np.array(["C2", "V2", "C1"], dtype=object)[categorical(rng, np.tile([0.55, 0.3, 0.15], (len(rep), 1)))]
    youth_justice = (age_at >= 12) & (traits.offending[p] > 2.0) & (rng.random(len(rep)) < 0.3)
    status[youth_justice] = np.array(["J1", "J2", "J3"], dtype=object)[rng.integers(0, 3, int(youth_justice.sum()))]
    last = k == n_pl[rep] - 1
    status[adopted[rep] & last] = "E1"  # placement order, ends in adoption
    misuse = np.where(traits.substance[p] & (age_at >= 11) & (rng.random(len(rep)) < 0.7), "1", "0")
    keep = s <= end
    rows = _rows(p[keep], s[keep], np.where(e[keep] > end, -1, e[keep]), "CLA_EPISODE",
                 legal_status=status[keep], substance_misuse=misuse[keep].astype(object))
    adopt_day = {int(pp): int(ee) for pp, ee, a, lt in zip(p, e, adopted[rep], last, strict=True)
                 if a and lt and ee <= end}
    return rows, adopt_day


def _adopt(rng, people: People, hh: Households, adopt_day: dict[int, int]) -> None:
    if not adopt_day:
        return
    idx = np.array(sorted(adopt_day), dtype=np.int64)
    homes = _add_homes(rng, hh, len(idx))
    values, p = nm.surnames("british")
    people.change_day[idx] = np.array([adopt_day[i] for i in idx.tolist()])
    people.new_surname[idx] = values[rng.choice(len(values), size=len(idx), p=p)]
    people.new_hh[idx] = homes
    people.adopted[idx] = True


def _post_adoption(rng, people: People, end: int) -> Rows:
    """The new record opened for an adopted child: a post-adoption support episode and assessment."""
    who = np.flatnonzero(people.adopted)
    start = np.minimum(people.change_day[who] + rng.integers(1, 1500, size=len(who)), end)
    close = start + rng.integers(60, 400, size=len(who))
    need = NEEDS[categorical(rng, np.tile([0.2, 0.1, 0.2, 0.0, 0.4, 0.1, 0.0, 0.0, 0.0], (len(who), 1)))]
    episode = _rows(who, start, np.where(close > end, -1, close), "CIN_EPISODE", primary_need=need)
    assessed = np.minimum(start + rng.integers(7, 45, size=len(who)), end)
    assessment = _rows(who, assessed, np.full(len(who), -1), "ASSESSMENT",
                       assessment_factors=np.full(len(who), "21", dtype=object))
    return concat_rows([episode, assessment]) or _rows(who, start, start, "CIN_EPISODE")


def _missing(rng, people: People, traits: Traits, cin, window_hi, end):
    """Missing episodes of children with the trait: recorded by social care only for children known to it."""
    who = np.flatnonzero(traits.missing)
    n = 1 + rng.poisson(np.clip(1.0 + people.risk[who], 0.5, 6))
    p = np.repeat(who, n)
    lo = add_years(people.dob[p], 11)
    d = uniform_days(rng, lo, window_hi[p])
    ok = (d >= lo) & (d <= window_hi[p]) & (d <= end)
    p, d = p[ok], d[ok]
    back = d + rng.integers(0, 4, size=len(d))
    all_missing = {"person": p, "day": d, "in_csc": cin[p]}
    sel = cin[p]
    rows = _rows(p[sel], d[sel], np.where(back[sel] > end, -1, back[sel]), "MISSING")
    return rows, all_missing


def _second_ids(rng, rows: Rows, rate: float) -> None:
    """Give a share of children (with 2+ rows) a second LA id for their later records."""
    person, day_ = rows["person"], rows["day"]
    base = rows["unit"] == 0
    people_, counts = np.unique(person[base], return_counts=True)
    chosen = people_[(counts >= 2) & (rng.random(len(people_)) < rate)]
    if not len(chosen):
        return
    for p in chosen.tolist():
        idx = np.flatnonzero((person == p) & base)
        ordered = idx[np.argsort(day_[idx], kind="stable")]
        rows["unit"][ordered[rng.integers(1, len(ordered)):]] = 1
