"""A fourth partner: an ISTV-style A&E extract of assault attendances (Information Sharing to Tackle
Violence, ISB 1594), with the patient's identifiers so it can be linked.

Attendances come from the police histories (victims of injury offences attend A&E, more often when a
knife was used or the injury was serious) plus assaults never reported to the police, concentrated in
at-risk young people. Each row carries what ISTV asks for (arrival date and time, date and time of the
assault, its location category, the means of assault) and what a hospital holds about the patient: a
hospital number (the local id), the NHS number (the same one social care records, where it has one),
names, date of birth, sex, ethnic category and postcode, recorded through the same error model.
"""

from __future__ import annotations

import numpy as np

from linkage.synth import geography as geo
from linkage.synth import writers as wr
from linkage.synth.histories import Rows, Traits, categorical
from linkage.synth.params import SynthParams
from linkage.synth.population import Households, People
from linkage.synth.timeutil import day, dmy, iso_minutes

HEALTH_COLUMNS = ["hospital_number", "attendance_id", "nhs_number", "forename", "surname", "dob", "sex",
                  "ethnicity", "postcode", "arrival_datetime", "assault_datetime", "location_of_assault",
                  "means_of_assault", "admitted", "age_at_attendance"]
# NHS Data Dictionary ethnic category per 18+1 code
NHS_ETHNIC = {"W1": "A", "W2": "B", "W3": "C", "W9": "C", "M1": "D", "M2": "E", "M3": "F", "M9": "G", "A1": "H",
              "A2": "J", "A3": "K", "A4": "R", "A9": "L", "B1": "M", "B2": "N", "B9": "P", "O1": "S", "O9": "S"}
# police location_type -> ISTV location of assault
ISTV_LOCATION = {"DWELLING": "HOME", "PUBLIC": "STREET_OPEN_SPACE", "HOSPITALITY": "PUB_CLUB_BAR",
                 "EDUCATION": "SCHOOL_COLLEGE", "OTHER": "OTHER"}
MEANS = np.array(["BODY_PART", "KNIFE_SHARP", "BLUNT_OBJECT", "GLASS_BOTTLE", "OTHER"], dtype=object)


def health_history(rng: np.random.Generator, pol: Rows, people: People, traits: Traits, params: SynthParams,
                   injury_codes: np.ndarray, serious_codes: np.ndarray) -> Rows:
    """A&E assault attendances: police victims of injury offences, plus unreported assaults."""
    h = params.health
    lo, hi = day(h.start), day(params.extract_date)
    if not h.enabled or not len(pol.get("person", [])):
        return {}
    victim = (pol["role"] == "VICTIM") & np.isin(pol["offence"], injury_codes) & (pol["day"] >= lo) & (
        pol["day"] <= hi)
    p_attend = np.where(np.isin(pol["offence"], serious_codes), h.attend_serious,
                        np.where(pol["knife"], h.attend_knife, h.attend_injury))
    go = victim & (rng.random(len(victim)) < p_attend)
    person, d, minute = pol["person"][go], pol["day"][go], pol["minute"][go]
    loc = np.array([ISTV_LOCATION.get(x, "OTHER") for x in pol["location"][go]], dtype=object)
    knife = pol["knife"][go]
    means = MEANS[categorical(rng, np.tile([0.62, 0.0, 0.14, 0.12, 0.12], (len(person), 1)))]
    means[knife] = "KNIFE_SHARP"
    # unreported assaults: young people, more at higher risk
    child = people.is_child
    rate = np.where(child, h.unreported_rate * np.exp(0.6 * np.clip(people.risk, -3, 4)), 0.0)
    n = rng.poisson(rate)
    up = np.repeat(np.arange(len(people)), n)
    ud = rng.integers(lo, hi + 1, size=len(up))
    ok = (ud - people.dob[up]) / 365.25 >= 10
    up, ud = up[ok], ud[ok]
    hours = np.array([2, 1.5, 1, .6, .4, .3, .3, .5, 1, 1.5, 2, 2.5, 3, 3, 3.5, 5, 4.5, 4, 4, 4, 4.5, 4.5, 4, 3])
    um = categorical(rng, np.tile(hours / hours.sum(), (len(up), 1))) * 60 + rng.integers(0, 60, size=len(up))
    uloc = np.array(list(ISTV_LOCATION.values()), dtype=object)[
        categorical(rng, np.tile([0.25, 0.45, 0.12, 0.08, 0.10], (len(up), 1)))]
    umeans = MEANS[categorical(rng, np.tile([0.6, 0.1 + 0.0, 0.12, 0.1, 0.08], (len(up), 1)))]
    person = np.concatenate([person, up])
    d = np.concatenate([d, ud])
    minute = np.concatenate([minute, um])
    loc = np.concatenate([loc, uloc])
    means = np.concatenate([means, umeans])
    delay = np.round(rng.gamma(1.5, 60, size=len(person))).astype(np.int64)  # minutes from assault to arrival
    serious = np.concatenate([np.isin(pol["offence"][go], serious_codes), np.zeros(len(up), bool)])
    admitted = rng.random(len(person)) < np.where(serious, 0.7, np.where(means == "KNIFE_SHARP", 0.35,
                                                                             h.admitted_share))
    dup = rng.random(len(person)) < h.errors.duplicate_id
    return {"person": person, "day": d, "minute": minute, "arrival": d * 1440 + minute + delay, "location": loc,
            "means": means, "admitted": admitted, "unit": np.where(dup, 1, 0)}


def health_frame(rng: np.random.Generator, rows: Rows, people: People, hh: Households, params: SynthParams,
                 nhs_of: dict[int, str], new_nhs, person_offset: int, attendance_offset: int
                 ) -> tuple[wr.Table, np.ndarray]:
    """The A&E extract and its truth pairs (hospital number, person index)."""
    order = np.lexsort((rows["arrival"], rows["person"]))
    rows = {k: v[order] for k, v in rows.items()}
    rates = params.health.errors
    uniq, _first, inv, forename, surname, dob, dob_missing, sex_missing, _ = wr.unit_identity(
        rng, rows, people, hh, rates, params, "jan1")
    p, d = rows["person"], rows["day"]
    hospital = np.array([f"RWE{person_offset + k // 3:08d}{'D' if k % 3 == 1 else ''}" for k in uniq.tolist()],
                        dtype=object)
    persons = uniq // 3
    missing_nhs = [int(x) for x in persons.tolist() if int(x) not in nhs_of]
    fresh = dict(zip(missing_nhs, new_nhs(len(missing_nhs)), strict=True)) if missing_nhs else {}
    nhs = np.array([nhs_of.get(int(x), fresh.get(int(x), "")) for x in persons.tolist()], dtype=object)
    nhs[rng.random(len(uniq)) >= params.health.nhs_known] = ""
    codes = np.array(geo.ETHNICITY_CODES, dtype=object)[people.ethnicity[p]]
    df = {
        "hospital_number": hospital[inv],
        "attendance_id": np.array([f"AE{attendance_offset + i:09d}" for i in range(len(p))], dtype=object),
        "nhs_number": nhs[inv], "forename": forename, "surname": surname,
        "dob": np.where(dob_missing, "", dmy(dob)),
        "sex": np.where(sex_missing, "9", np.where(people.male[p], "1", "2")),
        "ethnicity": np.array([NHS_ETHNIC.get(c, "Z") for c in codes.tolist()], dtype=object),
        "postcode": wr.recorded_postcodes(rng, people, hh, p, d, rates, params),
        "arrival_datetime": iso_minutes(rows["arrival"]), "assault_datetime": iso_minutes(d * 1440 + rows["minute"]),
        "location_of_assault": rows["location"], "means_of_assault": rows["means"],
        "admitted": np.where(rows["admitted"], "Y", "N"),
        "age_at_attendance": np.floor((d - people.dob[p]) / 365.25).astype(np.int64),
    }
    return {c: np.asarray(df[c]) for c in HEALTH_COLUMNS}, np.stack([hospital, persons], axis=1)
