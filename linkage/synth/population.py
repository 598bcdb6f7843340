"""Households and people of one batch: addresses and moves, families, names, dates of birth, risk.

Everything is drawn as numpy arrays for a whole batch. A household is a mother, often a father or
partner, and one to four children born in the target years; adults enter the extracts only through the
police (domestic abuse, drugs, other crime), children mostly through school. Household adversity drives
the parental factors (domestic abuse, substance misuse, mental health, low income) and, with an
individual term, each child's latent risk, which the histories turn into events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from linkage.synth import geography as geo
from linkage.synth import names as nm
from linkage.synth.params import SynthParams
from linkage.synth.timeutil import NEVER, add_years, day, sigmoid

_SAME_NPA_MOVE = 0.7


@dataclass
class Households:
    area: np.ndarray            # (H, 3) area id of address 0..2
    postcode: np.ndarray        # (H, 3) postcodes
    move: np.ndarray            # (H, 2) day of moving to address 1, 2 (NEVER if none)
    ethnicity: np.ndarray       # household ethnicity index
    adversity: np.ndarray
    parental_da: np.ndarray     # bool: domestic abuse between the adults
    parental_substance: np.ndarray
    parental_mh: np.ndarray
    low_income: np.ndarray
    mother: np.ndarray          # person index
    father: np.ndarray          # person index or -1


@dataclass
class People:
    hh: np.ndarray              # household index
    is_child: np.ndarray
    male: np.ndarray
    dob: np.ndarray             # days
    ethnicity: np.ndarray       # index into geo.ETHNICITY_CODES
    forename: np.ndarray
    middle: np.ndarray
    surname: np.ndarray
    risk: np.ndarray            # latent risk (children; adults get their household's adversity)
    culture: np.ndarray         # naming culture of the forename
    # identity change (adoption or a parent's new partner): from change_day on, surname and home differ
    change_day: np.ndarray
    new_surname: np.ndarray
    new_hh: np.ndarray
    adopted: np.ndarray

    def __len__(self) -> int:
        return len(self.hh)


def _choice(rng: np.random.Generator, values: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    return values[rng.choice(len(values), size=n, p=p)]


def _sample_forenames(rng: np.random.Generator, culture: np.ndarray, male: np.ndarray,
                      adult: np.ndarray) -> np.ndarray:
    out = np.empty(len(culture), dtype=object)
    for c in np.unique(culture):
        for sex_is_male in (True, False):
            for is_adult in (True, False):
                idx = np.flatnonzero((culture == c) & (male == sex_is_male) & (adult == is_adult))
                if len(idx):
                    values, p = nm.forenames(c, "M" if sex_is_male else "F", bool(is_adult))
                    out[idx] = _choice(rng, values, p, len(idx))
    return out


def _person_culture(rng: np.random.Generator, eth: np.ndarray) -> np.ndarray:
    out = np.empty(len(eth), dtype=object)
    for e in np.unique(eth):
        idx = np.flatnonzero(eth == e)
        options = nm.CULTURE_BY_ETHNICITY[geo.ETHNICITY_CODES[e]]
        cultures = np.array([c for c, _ in options], dtype=object)
        p = np.array([w for _, w in options])
        out[idx] = _choice(rng, cultures, p / p.sum(), len(idx))
    return out


def _surnames(rng: np.random.Generator, culture: np.ndarray) -> np.ndarray:
    out = np.empty(len(culture), dtype=object)
    for c in np.unique(culture):
        idx = np.flatnonzero(culture == c)
        values, p = nm.surnames(c)
        out[idx] = _choice(rng, values, p, len(idx))
    return out


def _addresses(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = geo.areas()
    area = np.empty((n, 3), dtype=np.int64)
    area[:, 0] = rng.choice(len(table), size=n, p=table.weight)
    # areas grouped by Neighbourhood Policing Area: a move mostly stays within the NPA
    by_npa = np.argsort(table.npa, kind="stable")
    npa_sorted = table.npa[by_npa]
    group_start = np.searchsorted(npa_sorted, table.npa, side="left")
    group_size = np.searchsorted(npa_sorted, table.npa, side="right") - group_start
    for k in (1, 2):
        far = rng.choice(len(table), size=n, p=table.weight)
        prev = area[:, k - 1]
        near = by_npa[group_start[prev] + (rng.random(n) * group_size[prev]).astype(np.int64)]
        area[:, k] = np.where(rng.random(n) < _SAME_NPA_MOVE, near, far)
    postcode = np.stack([geo.random_postcodes(rng, area[:, k]) for k in range(3)], axis=1)
    return area, postcode, table.deprivation[area[:, 0]]


def make_batch(rng: np.random.Generator, n_households: int, params: SynthParams) -> tuple[Households, People]:
    """Draw one batch of households and their members."""
    H = n_households
    area, postcode, deprivation = _addresses(rng, H)
    eth_p = geo.ethnicity_matrix()[geo.areas().profile[area[:, 0]]]
    hh_eth = (eth_p.cumsum(axis=1) > rng.random((H, 1))).argmax(axis=1)
    adversity = rng.normal(size=H) + 1.6 * (deprivation - 0.5) + params.risk_shift
    parental_da = rng.random(H) < sigmoid(-2.4 + 1.2 * adversity)
    parental_substance = rng.random(H) < sigmoid(-2.9 + 1.2 * adversity)
    parental_mh = rng.random(H) < sigmoid(-2.4 + 0.9 * adversity)
    low_income = rng.random(H) < sigmoid(-1.0 + 1.1 * adversity)
    father_present = parental_da | (rng.random(H) < sigmoid(0.9 - 0.7 * adversity))

    # children: first birth uniform over the target years, siblings 1.2-5 years apart
    n_children = rng.choice([1, 2, 3, 4], size=H, p=[0.32, 0.38, 0.19, 0.11])
    lo, hi = day(dt.date(params.birth_year_min, 1, 1)), day(dt.date(params.birth_year_max, 12, 31))
    first = rng.integers(lo, hi + 1, size=H)
    gaps = np.cumsum(np.round(rng.uniform(1.2, 5.0, size=(H, 4)) * 365.25).astype(np.int64), axis=1)
    gaps[:, 0] = 0
    child_dob = first[:, None] + gaps
    keep_child = (np.arange(4)[None, :] < n_children[:, None]) & (child_dob <= hi)

    mother_age = rng.uniform(17, 38, size=H)
    mother_dob = add_years(first, -mother_age)
    father_dob = add_years(mother_dob, -rng.uniform(-2, 8, size=H))

    # person table: mother, father (if any), children — contiguous per household
    hh_of = [np.arange(H), np.flatnonzero(father_present)]
    kids_h, kids_k = np.nonzero(keep_child)
    hh = np.concatenate([hh_of[0], hh_of[1], kids_h])
    role = np.concatenate([np.zeros(H, int), np.ones(len(hh_of[1]), int), np.full(len(kids_h), 2)])
    dob = np.concatenate([mother_dob, father_dob[hh_of[1]], child_dob[kids_h, kids_k]])
    order = np.lexsort((dob, role, hh))
    hh, role, dob = hh[order], role[order], dob[order]
    P = len(hh)
    is_child = role == 2
    male = np.where(role == 0, False, np.where(role == 1, True, rng.random(P) < 0.51))
    mother = np.flatnonzero(role == 0)
    father = np.full(H, -1)
    father[hh[role == 1]] = np.flatnonzero(role == 1)

    # ethnicity: mixed households have a White British mother and a father of the other heritage
    eth = hh_eth[hh].copy()
    code = np.array(geo.ETHNICITY_CODES)[eth]
    mixed = np.char.startswith(code.astype(str), "M") & ~is_child
    partner_of_mixed = {"M1": "B1", "M2": "B2", "M3": "A1", "M9": "O9"}
    for i in np.flatnonzero(mixed):
        eth[i] = geo.ETHNICITY_CODES.index(partner_of_mixed[code[i]] if role[i] == 1 else "W1")

    # names
    hh_culture = _person_culture(rng, hh_eth)
    family = _surnames(rng, hh_culture)
    british = hh_culture == "british"
    double = british & (rng.random(H) < 0.03)
    family[double] = [f"{a}-{b}" for a, b in zip(family[double], _surnames(rng, hh_culture[double]),
                                                    strict=True)]
    # a family shares its naming culture; only mixed-heritage households draw it person by person
    drawn = _person_culture(rng, eth)
    mixed_home = np.char.startswith(np.array(geo.ETHNICITY_CODES)[hh_eth[hh]].astype(str), "M")
    culture = np.where(mixed_home, drawn, hh_culture[hh]).astype(object)
    forename = _sample_forenames(rng, culture, male, ~is_child)
    middle = np.where(rng.random(P) < np.where(np.isin(culture, ["british", "irish"]), 0.65, 0.15),
                      _sample_forenames(rng, culture, male, ~is_child), "").astype(object)
    surname = family[hh].copy()
    # mothers often keep their own surname
    keeps_own = (role == 0) & (rng.random(P) < 0.3)
    surname[keeps_own] = _surnames(rng, hh_culture[hh[keeps_own]])
    _apply_naming_conventions(rng, hh_culture[hh], culture, male, is_child, forename, middle, surname)

    # risk: household adversity plus an individual term; boys higher
    risk = np.where(is_child, 0.75 * adversity[hh] + 0.7 * rng.normal(size=P) + 0.35 * male,
                    adversity[hh])

    moves = rng.poisson(0.5 + 0.35 * np.clip(adversity, 0, None))
    move_days = np.sort(rng.integers(day(params.social_care_start), day(params.extract_date), size=(H, 2)), axis=1)
    move_days = np.where(np.arange(2)[None, :] < np.minimum(moves, 2)[:, None], move_days, NEVER)

    households = Households(area, postcode, move_days, hh_eth, adversity, parental_da, parental_substance,
                            parental_mh, low_income, mother, father)
    people = People(hh, is_child, male, dob, eth, forename, middle, surname, risk, culture,
                    np.full(P, NEVER), surname.copy(), hh.copy(), np.zeros(P, bool))
    _step_family_surnames(rng, people, households, params)
    return households, people


def _apply_naming_conventions(rng: np.random.Generator, hh_culture: np.ndarray, culture: np.ndarray,
                              male: np.ndarray, is_child: np.ndarray, forename: np.ndarray,
                              middle: np.ndarray, surname: np.ndarray) -> None:
    """Sikh Singh/Kaur, Mohammed as a prefix, Begum/Bibi as a woman's surname (in place)."""
    P = len(culture)
    sikh = hh_culture == "sikh"
    no_family_name = sikh & np.isin(surname, ["Singh", "Kaur"])
    surname[no_family_name] = np.where(male[no_family_name], "Singh", "Kaur")
    with_suffix = sikh & ~no_family_name & (rng.random(P) < 0.8)
    middle[with_suffix] = np.where(male[with_suffix], "Singh", "Kaur")
    muslim = np.isin(culture, ["muslim_sa", "bangladeshi"])
    prefix = muslim & male & (rng.random(P) < 0.25) & ~np.isin(forename, nm.MOHAMMED_FORMS)
    middle[prefix] = forename[prefix]
    forename[prefix] = "Mohammed"
    begum = np.isin(hh_culture, ["muslim_sa", "bangladeshi"]) & ~male & (
        rng.random(P) < np.where(is_child, 0.2, 0.5))
    surname[begum] = np.where(rng.random(int(begum.sum())) < 0.75, "Begum", "Bibi")


def _step_family_surnames(rng: np.random.Generator, people: People, hh: Households,
                          params: SynthParams) -> None:
    """Some children take a step-parent's or a hyphenated surname part-way through childhood."""
    idx = np.flatnonzero(people.is_child & (rng.random(len(people)) < 0.05))
    if not len(idx):
        return
    people.change_day[idx] = add_years(people.dob[idx], rng.uniform(3, 14, size=len(idx)))
    step = _surnames(rng, np.full(len(idx), "british", dtype=object))
    mum = people.surname[hh.mother[people.hh[idx]]]
    hyphen = rng.random(len(idx)) < 0.4
    people.new_surname[idx] = np.where(
        hyphen, [f"{a}-{b}" if a != b else f"{a}-{s}" for a, b, s in zip(mum, people.surname[idx], step,
                                                                         strict=True)], step)


def address_at(people: People, hh: Households, person: np.ndarray, days: np.ndarray) -> tuple[np.ndarray,
                                                                                                 np.ndarray]:
    """(postcode, area id) of each person's home on each day; ``prev`` is handled by the caller."""
    h = np.where(days >= people.change_day[person], people.new_hh[person], people.hh[person])
    k = (days >= hh.move[h, 0]).astype(np.int64) + (days >= hh.move[h, 1])
    return hh.postcode[h, k], hh.area[h, k]


def previous_postcode(people: People, hh: Households, person: np.ndarray, days: np.ndarray) -> np.ndarray:
    """The address before the current one, or '' when there was none."""
    h = np.where(days >= people.change_day[person], people.new_hh[person], people.hh[person])
    k = (days >= hh.move[h, 0]).astype(np.int64) + (days >= hh.move[h, 1])
    return np.where(k > 0, hh.postcode[h, np.maximum(k - 1, 0)], "")


def surname_at(people: People, person: np.ndarray, days: np.ndarray) -> np.ndarray:
    return np.where(days >= people.change_day[person], people.new_surname[person], people.surname[person])
