"""Police histories: occurrences with victims, suspects/offenders, witnesses; missing-person reports.

Scenarios, each vectorised over the batch: young people's offending (count driven by the offending
propensity, with co-offenders and person victims drawn from the batch), serious-violence index offences
for the most prolific (GBH with intent 5D, s20 GBH in 8N, attempted murder 2, murder 1), young people's
victimisation, domestic abuse at home (parent suspect, parent victim, children as witnesses or victims),
parental drug offences, adults' other crime, and missing-person reports. Times follow the published
pattern: a 15:00–15:59 peak for under-25s, evenings for domestic abuse, few night-time offences.
"""

from __future__ import annotations

import numpy as np

from linkage.synth import geography as geo
from linkage.synth import sna
from linkage.synth.histories import Rows, Traits, categorical
from linkage.synth.params import SynthParams
from linkage.synth.population import Households, People, address_at
from linkage.synth.timeutil import add_years, day, sigmoid

# key: (ho_class, description, has a person victim)
OFFENCES: dict[str, tuple[str, str, bool]] = {
    "murder": ("1", "Murder", True),
    "attempted_murder": ("2", "Attempted murder", True),
    "gbh_s18": ("5D", "Wounding or causing grievous bodily harm with intent (s18)", True),
    "gbh_s20": ("8N", "Wounding or inflicting grievous bodily harm (s20)", True),
    "abh": ("8N", "Assault occasioning actual bodily harm", True),
    "common_assault": ("105A", "Assault without injury (common assault)", True),
    "harassment": ("8L", "Harassment", True),
    "stalking": ("8Q", "Stalking", True),
    "malicious_comms": ("8R", "Malicious communications", True),
    "coercive_control": ("8U", "Controlling or coercive behaviour in an intimate or family relationship", True),
    "threats_to_kill": ("3B", "Threats to kill", True),
    "robbery": ("34B", "Robbery of personal property", True),
    "blade": ("10D", "Possession of article with blade or point", False),
    "drug_supply": ("92A", "Trafficking in controlled drugs", False),
    "drug_possession": ("92D", "Possession of controlled drugs (excluding cannabis)", False),
    "cannabis": ("92E", "Possession of cannabis", False),
    "shoplifting": ("46", "Shoplifting", False),
    "theft": ("49", "Other theft", True),
    "burglary": ("28E", "Burglary - residential (home)", True),
    "damage": ("58A", "Criminal damage to a dwelling", True),
    "public_order": ("9A", "Public fear, alarm or distress", False),
    # added for the SNA profile calibration (linkage.synth.sna); appended so earlier draws are unchanged
    "rape": ("19C", "Rape of a female aged 16 and over", True),
    "sexual_assault_f": ("20A", "Sexual assault on a female aged 13 and over", True),
    "sexual_assault_m": ("17A", "Sexual assault on a male aged 13 and over", True),
    "affray": ("66", "Affray", True),
    "kidnapping": ("36", "Kidnapping", True),
    "business_robbery": ("34A", "Robbery of business property", True),
}
KEYS = list(OFFENCES)
K = {k: i for i, k in enumerate(KEYS)}
HO_CLASS = np.array([v[0] for v in OFFENCES.values()], dtype=object)
DESCRIPTION = np.array([v[1] for v in OFFENCES.values()], dtype=object)
PERSON_VICTIM = np.array([v[2] for v in OFFENCES.values()])
SV_INDEX = np.array([K["murder"], K["attempted_murder"], K["gbh_s18"], K["gbh_s20"]])
DRUGS = np.array([K["drug_supply"], K["drug_possession"], K["cannabis"]])
# offences inside the SNA serious-violence definition (configs/offences.yaml: serious_violence)
SV_CODES = np.array([K[k] for k in ("murder", "attempted_murder", "gbh_s18", "gbh_s20", "abh", "harassment",
                                    "stalking", "malicious_comms", "coercive_control", "threats_to_kill",
                                    "robbery", "rape", "sexual_assault_f", "sexual_assault_m", "affray",
                                    "kidnapping", "business_robbery")])
# offences whose victims may attend A&E (linkage.synth.health), and the serious ones
INJURY_CODES = np.array([K[k] for k in ("murder", "attempted_murder", "gbh_s18", "gbh_s20", "abh", "robbery",
                                        "rape", "affray")])
SERIOUS_INJURY_CODES = np.array([K[k] for k in ("murder", "attempted_murder", "gbh_s18", "gbh_s20")])
RELATIONSHIPS = np.array(["STRANGER", "ACQUAINTANCE", "FAMILY", "NOT_RECORDED"], dtype=object)
LOCATIONS = np.array(["DWELLING", "PUBLIC", "HOSPITALITY", "EDUCATION", "OTHER"], dtype=object)

_HOURS_U25 = np.array([1.5, 1, .7, .5, .3, .3, .4, 1, 2, 3, 3.5, 4, 4.5, 5, 6, 10, 8, 7, 6.5, 6, 5.5, 4.5, 3, 2])
_HOURS_HOME = np.array([2, 1.5, 1, .6, .4, .4, .6, 1.5, 2.5, 3, 3.5, 4, 4, 4, 4.5, 5, 5.5, 6.5, 7.5, 8, 8, 7, 5, 3])


def _mix(n: int, **weights: float) -> np.ndarray:
    w = np.zeros(len(KEYS))
    for k, v in weights.items():
        w[K[k]] = v
    return np.tile(w, (n, 1))


_YOUTH = dict(common_assault=14, abh=14, shoplifting=12, damage=8, robbery=6, blade=5, harassment=6,
              malicious_comms=4, burglary=5, theft=5, public_order=4, threats_to_kill=1, cannabis=4,
              drug_possession=2, drug_supply=3)


class _Occurrences:
    """Accumulates occurrences and their participants, then flattens to one row per participant."""

    def __init__(self) -> None:
        self.occ: list[dict[str, np.ndarray]] = []
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.n = 0

    def add(self, day_: np.ndarray, minute: np.ndarray, offence: np.ndarray, location: np.ndarray,
            area: np.ndarray, relationship: np.ndarray | None = None, **flags: np.ndarray) -> np.ndarray:
        n = len(day_)
        cols = {"day": day_, "minute": minute, "offence": offence, "location": location, "area": area,
                "relationship": (np.full(n, "", dtype=object) if relationship is None
                                 else np.asarray(relationship, dtype=object))}
        for f in ("da", "knife", "alcohol", "gang", "cse", "cce"):
            cols[f] = np.asarray(flags.get(f, np.zeros(n, bool)), dtype=bool)
        self.occ.append(cols)
        ids = np.arange(self.n, self.n + n)
        self.n += n
        return ids

    def involve(self, occ: np.ndarray, person: np.ndarray, role: str | np.ndarray) -> None:
        role_arr = np.broadcast_to(np.asarray(role, dtype=object), occ.shape).copy()
        self.parts.append((occ, person, role_arr))

    def rows(self) -> Rows:
        occ = {k: np.concatenate([o[k] for o in self.occ]) for k in self.occ[0]}
        o = np.concatenate([p[0] for p in self.parts])
        out = {"occ": o, "person": np.concatenate([p[1] for p in self.parts]),
               "role": np.concatenate([p[2] for p in self.parts])}
        for k, v in occ.items():
            out[k] = v[o]
        return out


def _minutes(rng: np.random.Generator, hours: np.ndarray, n: int) -> np.ndarray:
    h = categorical(rng, np.tile(hours, (n, 1)))
    return h * 60 + rng.integers(0, 60, size=n)


def _pick(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    return rng.choice(len(weights), size=n, p=weights / weights.sum())


def police_history(rng: np.random.Generator, people: People, hh: Households, traits: Traits,
                   missing: Rows, params: SynthParams) -> Rows:
    occ = _Occurrences()
    lo, hi = day(params.police_start), day(params.extract_date)
    P = len(people)
    r = people.risk
    child = people.is_child
    victim_w = np.where(child, np.exp(0.5 * np.clip(r, -3, 4)), 0.25)

    def home_area(person: np.ndarray, d: np.ndarray) -> np.ndarray:
        return address_at(people, hh, person, d)[1]

    # who carries a knife: the SNA's knife cohort witnessed or experienced domestic abuse more often
    # (over a third) and a third have mental-health flags (see _knife_weight)
    # (and, at equal DA and mental health, no more often victimised than other young offenders: hence
    # the damping of general risk, which would otherwise lift the cohort's 54% previously victimised)
    carrier = ((1 + 4.5 * hh.parental_da[people.hh]) * (1 + 10.0 * traits.mh)
               * np.exp(-0.7 * np.clip(people.risk, -3, 4)))

    # --- young people's offending ------------------------------------------------------------------
    rate = np.where(child, np.clip(np.exp(-3.2 + 2.1 * traits.offending), 0, 40), 0.0)
    n_off = rng.poisson(rate)
    who = np.repeat(np.arange(P), n_off)
    d = add_years(people.dob[who], 10 + rng.gamma(3.0, 2.0, size=len(who)))
    ok = (d >= lo) & (d <= hi)
    who, d = who[ok], d[ok]
    mix = _mix(len(who), **_YOUTH)
    no_drugs = ~traits.substance[who]
    mix[np.ix_(no_drugs, DRUGS[1:])] = 0
    mix[~(traits.cce[who] | traits.gang[who]), DRUGS[0]] = 0
    mix[:, K["drug_supply"]] *= 1 + 4 * traits.cce[who]
    offence = categorical(rng, mix)
    age = (d - people.dob[who]) / 365.25
    n = len(who)
    minute = _minutes(rng, _HOURS_U25, n)
    # boys' offending clusters at the end of the school day (the deep dive: 69% of suspects male)
    minute = _to_school_end(rng, minute, people.male[who] & (age < 18), 0.4)
    offence, d, school = _after_school(rng, offence, d, minute, age < 18)
    age = (d - people.dob[who]) / 365.25
    u = rng.random((n, 6))
    area = home_area(who, d)
    knife = (offence == K["blade"]) | (np.isin(offence, [K["abh"], K["robbery"], K["threats_to_kill"]])
                                       & (u[:, 0] < (0.08 + 0.2 * traits.gang[who]) * _knife_weight(
                                           people, carrier, who, area, age)))
    loc = _youth_location(rng, offence, age)
    ids = occ.add(d, minute, offence, loc, area, knife=knife,
                  alcohol=(age >= 16) & (u[:, 1] < 0.12), gang=traits.gang[who] & (u[:, 2] < 0.5),
                  cce=traits.cce[who] & np.isin(offence, [K["drug_supply"], K["robbery"], K["blade"]])
                  & (u[:, 3] < 0.6), da=(loc == "DWELLING") & PERSON_VICTIM[offence] & (u[:, 4] < 0.08))
    occ.involve(ids, who, np.where(u[:, 5] < 0.45, "OFFENDER", "SUSPECT"))
    offenders = np.unique(who)
    _co_offenders(rng, occ, ids, who, d, people, traits, offenders)
    pv = PERSON_VICTIM[offence] & ~school
    _victims(rng, occ, ids[pv], d[pv], who[pv], people, victim_w, min_age=8)
    # after school, victims are mostly boys (67% in the SNA's deep dive)
    pv = PERSON_VICTIM[offence] & school
    _victims(rng, occ, ids[pv], d[pv], who[pv], people, victim_w * np.where(people.male, 2.5, 1.0), min_age=8)
    violent = np.isin(offence, [K["abh"], K["common_assault"], K["robbery"]]) & (rng.random(n) < 0.06)
    _witnesses(rng, occ, ids[violent], d[violent], people, victim_w)

    # --- serious-violence index offences ----------------------------------------------------------
    counts = np.bincount(who, minlength=P)
    # superlinear in the offence count: the index offence ends a prolific career
    p_hh = np.clip(params.high_harm_scale * 0.012 * counts ** 1.3, 0, 0.6)
    hh_people = np.flatnonzero(rng.random(P) < p_hh)
    _serious_violence(rng, occ, hh_people, who, d, people, traits, victim_w, offenders, lo, hi, home_area)

    # --- young people's victimisation (suspect unknown, or another young offender) --------------------
    v_rate = np.where(child, np.clip(0.12 * np.exp(0.7 * np.clip(r, -3, 4)) * (1 + 0.15 * counts), 0, 8), 0)
    vic = np.repeat(np.arange(P), rng.poisson(v_rate))
    vd = add_years(people.dob[vic], 8 + rng.gamma(2.5, 2.5, size=len(vic)))
    ok = (vd >= lo) & (vd <= hi)
    vic, vd = vic[ok], vd[ok]
    voff = categorical(rng, _mix(len(vic), common_assault=25, abh=20, robbery=10, harassment=10,
                                 malicious_comms=10, theft=10, threats_to_kill=2))
    vage = (vd - people.dob[vic]) / 365.25
    vminute = _minutes(rng, _HOURS_U25, len(vic))
    vminute = _to_school_end(rng, vminute, people.male[vic] & (vage < 18), 0.1)  # boys' victimisation too
    voff, vd, _ = _after_school(rng, voff, vd, vminute, vage < 18)
    vage = (vd - people.dob[vic]) / 365.25
    vloc = _youth_location(rng, voff, vage)
    vknife = np.isin(voff, [K["robbery"], K["abh"]]) & (rng.random(len(vic)) < 0.1)
    vids = occ.add(vd, vminute, voff, vloc, home_area(vic, vd), knife=vknife)
    occ.involve(vids, vic, "VICTIM")
    known = rng.random(len(vic)) < 0.25
    if len(offenders):
        sus = offenders[rng.integers(0, len(offenders), size=int(known.sum()))]
        # a known knife suspect is one of the young knife carriers (see _knife_weight), not any offender
        kn = vknife[known]
        in_city = geo.areas().la[hh.area[people.hh[offenders], 0]] == "Leicester"
        w = carrier[offenders] * np.where(people.male[offenders], 1.0, 0.04) * np.where(in_city, 1.0, 0.1)
        sus[kn] = offenders[rng.choice(len(offenders), size=int(kn.sum()), p=w / w.sum())]
        ok = (sus != vic[known]) & (vd[known] >= add_years(people.dob[sus], 10))
        occ.involve(vids[known][ok], sus[ok], "SUSPECT")

    _domestic_abuse(rng, occ, people, hh, lo, hi, home_area)
    _adults(rng, occ, people, hh, victim_w, lo, hi, home_area)
    _missing_reports(rng, occ, missing, people, traits, lo, hi, home_area)
    # SNA calibration: its own random stream (spawned), so the scenarios above draw exactly as before
    extra = rng.spawn(1)[0]
    sna.background(extra, occ, people, hh, params, K, SV_CODES, carrier)
    # a second pass tops up what the first lost (occurrences without a valid victim or suspect: most in
    # the small rural districts, whose rates otherwise came out 10-15% low)
    sna.background(extra, occ, people, hh, params, K, SV_CODES, carrier)
    _default_relationships(extra, occ)
    rows = occ.rows()
    rows["npa"] = geo.areas().npa[rows["area"]]
    rows["markers"] = _markers(rng, rows, people, traits)
    return rows


def _knife_weight(people: People, carrier: np.ndarray, who: np.ndarray, area: np.ndarray,
                  age: np.ndarray) -> np.ndarray:
    """Relative chance that a young offender's violent offence is knife-enabled (mean 1 over ``who``).

    The SNA's knife-enabled under-25 cohort is 90% male, over three quarters of its offences are in
    Leicester City, over a third witnessed or experienced domestic abuse and about a third have
    mental-health flags, and its peak age is 16-17: knife carrying is concentrated accordingly
    (coefficients calibrated on 40k-200k people, docs/synthetic-data.md)."""
    if not len(who):
        return np.ones(0)
    city = geo.areas().la[area] == "Leicester"
    w = (np.where(people.male[who], 1.0, 0.08) * np.where(city, 1.0, 0.1) * carrier[who]
         * np.where((age >= 15) & (age < 18), 2.2, 1.0))  # the cohort's peak age is 16-17
    return w / w.mean()


def _to_school_end(rng, minute: np.ndarray, who: np.ndarray, share: float) -> np.ndarray:
    """``share`` of ``who``'s occurrences in the hours around the end of the school day (13:00-17:59)
    move to 15:00-15:59."""
    hour = minute // 60
    move = who & np.isin(hour, [13, 14, 16, 17]) & (rng.random(len(minute)) < share)
    return np.where(move, 15 * 60 + minute % 60, minute)


def _after_school(rng, offence: np.ndarray, d: np.ndarray, minute: np.ndarray, child: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Young people's serious violence at 15:00-15:59: as the SNA's after-school deep dive found, mostly
    assaults with injury (78%) and robbery (10%), about three times as often on a school day as on a
    weekend day. Recasts such occurrences of under-18s and moves most weekend ones to the Friday before."""
    school = child & (minute // 60 == 15) & np.isin(offence, SV_CODES)
    u = rng.random((len(offence), 2))
    offence = offence.copy()
    offence[school & (u[:, 0] < 0.85)] = K["abh"]   # the other 8% keep their offence (some are ABH too)
    offence[school & (u[:, 0] >= 0.85) & (u[:, 0] < 0.92)] = K["robbery"]
    dow = (d + 3) % 7  # 0 = Monday
    move = school & (dow >= 5) & (u[:, 1] < 0.55)
    d = d.copy()
    d[move] -= dow[move] - 4
    return offence, d, school


def _default_relationships(rng, occ: _Occurrences) -> None:
    """Victim-offender relationship where a scenario did not set one: partner for domestic abuse, else
    stranger in ~41% of cases (the SNA knife cohort's figure), mostly acquaintances otherwise."""
    for o in occ.occ:
        rel = o["relationship"]
        unset = rel == ""
        person_victim = np.where(o["offence"] >= 0, PERSON_VICTIM[np.maximum(o["offence"], 0)], False)
        draw = RELATIONSHIPS[categorical(rng, np.tile([0.41, 0.47, 0.04, 0.08], (len(rel), 1)))]
        rel[unset & person_victim] = draw[unset & person_victim]
        rel[unset & person_victim & o["da"]] = "PARTNER"


def _youth_location(rng, offence: np.ndarray, age: np.ndarray) -> np.ndarray:
    n = len(offence)
    w = np.tile([0.2, 0.5, 0.02, 0.0, 0.28], (n, 1))
    home = np.isin(offence, [K["burglary"], K["damage"], K["harassment"], K["malicious_comms"]])
    w[home] = [0.75, 0.1, 0.0, 0.0, 0.15]
    assault = np.isin(offence, [K["abh"], K["common_assault"]])
    w[assault] = [0.3, 0.45, 0.06, 0.0, 0.19]
    w[assault & (age < 16), 3] = 0.15
    w[assault & (age >= 18), 2] = 0.15
    w[np.isin(offence, [K["shoplifting"]])] = [0, 0, 0, 0, 1]
    return LOCATIONS[categorical(rng, w)]


def _co_offenders(rng, occ: _Occurrences, ids, who, d, people: People, traits: Traits, offenders) -> None:
    """Joint offences: a co-offending young person brings one or two others from the batch."""
    joint = traits.co_offends[who] & (rng.random(len(who)) < 0.25)
    if not joint.any() or len(offenders) < 2:
        return
    for _ in range(2):
        other = offenders[rng.integers(0, len(offenders), size=int(joint.sum()))]
        ok = (other != who[joint]) & (d[joint] >= add_years(people.dob[other], 10))
        occ.involve(ids[joint][ok], other[ok], "SUSPECT")
        joint &= rng.random(len(joint)) < 0.3


def _victims(rng, occ: _Occurrences, ids, d, offender, people: People, weights, min_age: float) -> None:
    v = _pick(rng, weights, len(ids))
    ok = (v != offender) & (d >= add_years(people.dob[v], min_age))
    occ.involve(ids[ok], v[ok], "VICTIM")


def _witnesses(rng, occ: _Occurrences, ids, d, people: People, weights) -> None:
    w = _pick(rng, weights, len(ids))
    ok = d >= add_years(people.dob[w], 8)
    occ.involve(ids[ok], w[ok], "WITNESS")


def _serious_violence(rng, occ, hh_people, who, d, people, traits, victim_w, offenders, lo, hi, home_area):
    """The index offence sits near the end of a prolific offending career (about 80% of it before)."""
    if not len(hh_people):
        return
    order = np.lexsort((d, who))
    who_s, d_s = who[order], d[order]
    start = np.searchsorted(who_s, hh_people, side="left")
    stop = np.searchsorted(who_s, hh_people, side="right")
    days = []
    for s, e, p in zip(start.tolist(), stop.tolist(), hh_people.tolist(), strict=True):
        if e > s:
            k = s + int(np.floor(0.8 * (e - s)))
            base = d_s[min(k, e - 1)]
            days.append(min(base + int(rng.integers(1, 60)), hi))
        else:
            days.append(int(rng.integers(max(lo, int(add_years(people.dob[p], 14))), hi + 1)))
    sv_day = np.array(days, dtype=np.int64)
    n = len(hh_people)
    offence = SV_INDEX[categorical(rng, np.tile([0.03, 0.12, 0.55, 0.30], (n, 1)))]
    loc = LOCATIONS[categorical(rng, np.tile([0.25, 0.6, 0.1, 0.0, 0.05], (n, 1)))]
    ids = occ.add(sv_day, _minutes(rng, _HOURS_U25, n), offence, loc, home_area(hh_people, sv_day),
                  knife=rng.random(n) < np.where(people.male[hh_people], 0.65, 0.25)
                  * np.where(geo.areas().la[home_area(hh_people, sv_day)] == "Leicester", 1.0, 0.4),
                  gang=traits.gang[hh_people] & (rng.random(n) < 0.6),
                  alcohol=rng.random(n) < 0.15)
    occ.involve(ids, hh_people, np.where(rng.random(n) < 0.6, "OFFENDER", "SUSPECT"))
    _victims(rng, occ, ids, sv_day, hh_people, people, victim_w, min_age=12)


def _domestic_abuse(rng, occ: _Occurrences, people: People, hh: Households, lo, hi, home_area) -> None:
    """Abuse between the adults at home; children present are witnesses, sometimes victims."""
    homes = np.flatnonzero(hh.parental_da[: len(hh.mother)] & (hh.father[: len(hh.mother)] >= 0))
    k = 1 + rng.poisson(np.clip(2.5 + 0.5 * hh.adversity[homes], 0.5, 6))
    h = np.repeat(homes, k)
    d = rng.integers(lo, hi + 1, size=len(h))
    n = len(h)
    offence = categorical(rng, _mix(n, abh=30, common_assault=35, harassment=8, coercive_control=12,
                                    threats_to_kill=3, damage=12))
    mother, father = hh.mother[h], hh.father[h]
    reversed_roles = rng.random(n) < 0.1
    suspect = np.where(reversed_roles, mother, father)
    victim = np.where(reversed_roles, father, mother)
    ids = occ.add(d, _minutes(rng, _HOURS_HOME, n), offence, np.full(n, "DWELLING", dtype=object),
                  home_area(suspect, d), da=np.ones(n, bool), alcohol=rng.random(n) < 0.3)
    occ.involve(ids, suspect, np.where(rng.random(n) < 0.4, "OFFENDER", "SUSPECT"))
    occ.involve(ids, victim, "VICTIM")
    # children of the household aged 0-17 on the day
    kids = np.flatnonzero(people.is_child)
    by_hh: dict[int, list[int]] = {}
    for p, hhid in zip(kids.tolist(), people.hh[kids].tolist(), strict=True):
        by_hh.setdefault(hhid, []).append(p)
    o_list, c_list = [], []
    for i, hhid in enumerate(h.tolist()):
        for child in by_hh.get(hhid, ()):
            o_list.append(i)
            c_list.append(child)
    if not o_list:
        return
    oi, c = np.array(o_list), np.array(c_list)
    age = (d[oi] - people.dob[c]) / 365.25
    present = (age >= 0) & (age < 18) & (d[oi] < people.change_day[c])
    u = rng.random(len(oi))
    occ.involve(ids[oi][present & (u < 0.08)], c[present & (u < 0.08)], "VICTIM")
    wit = present & (u >= 0.08) & (u < 0.38) & (age >= 3)
    occ.involve(ids[oi][wit], c[wit], "WITNESS")


def _adults(rng, occ: _Occurrences, people: People, hh: Households, victim_w, lo, hi, home_area) -> None:
    """Parents' drug offences and adults' other crime as victims and suspects."""
    adult = ~people.is_child
    a = hh.adversity[people.hh]
    drug = adult & hh.parental_substance[people.hh] & (rng.random(len(people)) < 0.6)
    n_drug = np.where(drug, 1 + rng.poisson(1.0, size=len(people)), 0)
    n_vic = np.where(adult, rng.poisson(np.clip(0.15 + 0.1 * a, 0.02, 1)), 0)
    n_sus = np.where(adult, rng.poisson(np.clip(0.04 + 0.06 * people.male + 0.05 * a, 0.01, 1)), 0)
    for counts, mix, role in (
        (n_drug, dict(cannabis=6, drug_possession=3, drug_supply=1), "SUSPECT"),
        (n_vic, dict(harassment=25, malicious_comms=15, stalking=5, common_assault=20, abh=10, theft=15,
                     burglary=10), "VICTIM"),
        (n_sus, dict(harassment=20, malicious_comms=10, abh=20, common_assault=25, shoplifting=10, damage=10,
                     public_order=5), "SUSPECT"),
    ):
        p = np.repeat(np.arange(len(people)), counts)
        d = rng.integers(lo, hi + 1, size=len(p))
        offence = categorical(rng, _mix(len(p), **mix))
        loc = LOCATIONS[categorical(rng, np.tile([0.55, 0.3, 0.08, 0.0, 0.07], (len(p), 1)))]
        ids = occ.add(d, _minutes(rng, _HOURS_HOME, len(p)), offence, loc, home_area(p, d),
                      alcohol=(loc == "HOSPITALITY") | (rng.random(len(p)) < 0.1))
        occ.involve(ids, p, np.where((role == "SUSPECT") & (rng.random(len(p)) < 0.4), "OFFENDER", role))


def _missing_reports(rng, occ: _Occurrences, missing: Rows, people: People, traits: Traits, lo, hi,
                     home_area) -> None:
    """Police reports for missing episodes: all of those unknown to social care, most of the others."""
    p, d = missing["person"], missing["day"]
    keep = (~missing["in_csc"] | (rng.random(len(p)) < 0.7)) & (d >= lo) & (d <= hi)
    p, d = p[keep], d[keep]
    n = len(p)
    ids = occ.add(d, _minutes(rng, _HOURS_HOME, n), np.full(n, -1), np.full(n, "OTHER", dtype=object),
                  home_area(p, d), cse=traits.cse[p] & (rng.random(n) < 0.4),
                  cce=traits.cce[p] & (rng.random(n) < 0.4))
    occ.involve(ids, p, "MISSING_PERSON")


def _markers(rng, rows: Rows, people: People, traits: Traits) -> np.ndarray:
    """Nominal markers, set from a date on: MH, SELF_HARM (traits), WEAPONS, DRUGS (after an offence)."""
    P = len(people)
    person, d = rows["person"], rows["day"]
    suspect = np.isin(rows["role"], ["SUSPECT", "OFFENDER"])
    big = np.int64(10**7)
    first_knife = np.full(P, big)
    np.minimum.at(first_knife, person[suspect & rows["knife"]], d[suspect & rows["knife"]])
    drug = suspect & np.isin(rows["offence"], DRUGS)
    first_drug = np.full(P, big)
    np.minimum.at(first_drug, person[drug], d[drug])
    mh_from = add_years(people.dob, rng.uniform(12, 17, size=P))
    mh = traits.mh[person] & (d >= mh_from[person]) & (sigmoid(people.risk[person]) > 0.3)
    parts = [np.where(mh, "MH", ""), np.where(traits.self_harm[person] & mh, "SELF_HARM", ""),
             np.where(d > first_knife[person], "WEAPONS", ""), np.where(d > first_drug[person], "DRUGS", "")]
    return np.array([";".join(x for x in t if x) for t in zip(*parts, strict=True)], dtype=object)
