"""One generation batch: households -> traits -> histories -> identifiers -> frames for every file.

The population is the set of people with at least one record; a batch keeps at most ``remaining`` of
them (in person order, so whole households stay together except at the very end of a run).
"""

from __future__ import annotations

import numpy as np

from linkage.synth import writers as wr
from linkage.synth.education import education_history
from linkage.synth.histories import draw_traits, take
from linkage.synth.ids import IdFactory
from linkage.synth.params import SynthParams
from linkage.synth.police import SV_INDEX, police_history
from linkage.synth.population import make_batch
from linkage.synth.social_care import social_care_history


def generate_batch(rng: np.random.Generator, n_households: int, remaining: int, params: SynthParams,
                   ids: IdFactory, refs, person_offset: int, hh_offset: int
                   ) -> tuple[dict[str, wr.Table], int, int, int, int]:
    hh, people = make_batch(rng, n_households, params)
    traits = draw_traits(rng, people, hh)
    csc, missing = social_care_history(rng, people, hh, traits, params)
    edu = education_history(rng, people, hh, traits, params)
    pol = police_history(rng, people, hh, traits, missing, params)

    present = np.zeros(len(people), bool)
    for rows in (csc, edu, pol):
        if rows:
            present[rows["person"]] = True
    members = np.flatnonzero(present)[:remaining]
    keep = np.zeros(len(people), bool)
    keep[members] = True
    csc, edu, pol = (take(rows, keep[rows["person"]]) if rows else rows for rows in (csc, edu, pol))

    person_ids = np.array([f"P{person_offset + i:08d}" for i in range(len(people))], dtype=object)
    household_ids = np.array([f"H{hh_offset + i:07d}" for i in range(len(hh.area))], dtype=object)
    frames: dict[str, wr.Table] = {}
    truth = []
    upn_of: dict[int, str] = {}
    nhs_of: dict[int, str] = {}
    if edu:
        frames["education"], pairs, upn_of = wr.education_frame(rng, edu, people, hh, params, ids)
        truth.append(("education", pairs))
    else:
        frames["education"] = wr.empty_table(wr.EDUCATION_COLUMNS)
    if csc:
        frames["social_care"], pairs, nhs_of = wr.social_care_frame(rng, csc, people, hh, params, ids, upn_of)
        truth.append(("social_care", pairs))
    else:
        frames["social_care"] = wr.empty_table(wr.SOCIAL_CARE_COLUMNS)
    has_alias = np.zeros(len(people), bool)
    high_harm = 0
    if pol:
        order = np.lexsort((pol["person"], pol["occ"], pol["day"]))
        pol = {k: v[order] for k, v in pol.items()}
        crime_refs = refs.assign(pol["occ"], pol["day"], pol["offence"] < 0)
        frames["police"], pairs, has_alias = wr.police_frame(rng, pol, people, hh, traits, params, ids, crime_refs)
        truth.append(("police", pairs))
        sv = np.isin(pol["offence"], SV_INDEX) & np.isin(pol["role"], ["SUSPECT", "OFFENDER"])
        high_harm = len(np.unique(pol["person"][sv]))
    else:
        frames["police"] = wr.empty_table(wr.POLICE_COLUMNS)
    # the health partner (issue 17): A&E assault attendances, from police victims and unreported assaults
    from linkage.synth.health import HEALTH_COLUMNS, health_frame, health_history
    from linkage.synth.police import INJURY_CODES, SERIOUS_INJURY_CODES
    ae = health_history(rng.spawn(1)[0], pol, people, traits, params, INJURY_CODES, SERIOUS_INJURY_CODES) if pol else {}
    if ae:
        ae = take(ae, keep[ae["person"]])
    if ae and len(ae["person"]):
        frames["health"], pairs = health_frame(rng.spawn(1)[0], ae, people, hh, params, nhs_of, ids.nhs_number,
                                               person_offset, refs.next_attendance(len(ae["person"])))
        truth.append(("health", pairs))
    else:
        frames["health"] = wr.empty_table(HEALTH_COLUMNS)
    frames["truth"] = {
        "source": np.array([src for src, pairs in truth for _ in range(len(pairs))], dtype=object),
        "local_id": np.concatenate([pairs[:, 0] for _, pairs in truth]) if truth else np.array([], object),
        "person_id": (person_ids[np.concatenate([pairs[:, 1] for _, pairs in truth]).astype(np.int64)]
                      if truth else np.array([], object)),
    }
    frames["people"] = wr.people_frame(people, person_ids, household_ids, keep, has_alias)
    # synthetic rate denominators (issue 17): residents of the batch's households in mid-window
    from linkage.synth.sna import resident_population
    from linkage.synth.timeutil import day as _day
    ref = (_day(params.sna.window_start) + _day(params.extract_date)) // 2
    frames["population"] = resident_population(people, hh, ref)
    return frames, len(members), len(hh.area), len(people), high_harm
