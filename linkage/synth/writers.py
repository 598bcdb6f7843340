"""Turn generated events into the partners' raw extracts (data-contracts §1), plus truth and people.

Each ``*_frame`` function assigns local ids, records identifiers through the error model and formats
every column exactly as the partner configs in ``configs/partners/`` read them.
"""

from __future__ import annotations

from typing import TextIO

import numpy as np

from linkage.synth import errors as er
from linkage.synth import geography as geo
from linkage.synth import names as nm
from linkage.synth.histories import Rows, Traits
from linkage.synth.ids import IdFactory
from linkage.synth.params import SynthParams
from linkage.synth.police import DESCRIPTION, HO_CLASS
from linkage.synth.population import Households, People, address_at, previous_postcode, surname_at
from linkage.synth.timeutil import NEVER, days_to_ymd, dmy, iso, iso_minutes

POLICE_COLUMNS = ["nominal_id", "forename", "surname", "date_of_birth", "gender", "ethnicity", "postcode",
                  "crime_ref", "ho_class", "offence_description", "committed_from", "role", "da_flag",
                  "knife_flag", "alcohol_flag", "gang_flag", "cse_flag", "cce_flag", "location_type", "npa",
                  "markers", *"district victim_relationship age_at_occurrence person_sex".split()]
EDUCATION_COLUMNS = ["upn", "forename", "middle_names", "surname", "former_surname", "preferred_surname", "dob",
                     "sex", "ethnicity", "postcode", "record_type", "event_date", "urn", "nc_year",
                     "sen_provision", "sen_primary_need", "fsm_eligible", "sessions_possible", "sessions_missed",
                     "ap_placement", "exclusion_category", "exclusion_reason", "neet_activity", "home_sector"]
SOCIAL_CARE_COLUMNS = ["child_id", "forename", "surname", "dob", "sex", "ethnicity", "nhs_number", "upn",
                       "postcode", "record_type", "start_date", "end_date", "primary_need", "assessment_factors",
                       "cp_category", "legal_status", "substance_misuse"]
TRUTH_COLUMNS = ["source", "local_id", "person_id"]
PEOPLE_COLUMNS = ["person_id", "household_id", "is_child", "forename", "middle_names", "surname", "dob", "sex",
                  "ethnicity", "surname_changed_to", "surname_change_date", "adopted", "police_alias"]
_CODES = np.array(geo.ETHNICITY_CODES, dtype=object)
Table = dict[str, np.ndarray]   # column name -> values, in file order


def _ordered(table: dict, columns: list[str]) -> Table:
    return {c: np.asarray(table[c]) for c in columns}


def empty_table(columns: list[str]) -> Table:
    return {c: np.array([], dtype=object) for c in columns}


def write_table(handle: TextIO, table: Table) -> int:
    """Append rows as CSV (minimal quoting, ``\n`` line ends); returns the number of rows written."""
    columns = []
    for values in table.values():
        texts = [str(v) for v in values.tolist()]
        joined = "\x1f".join(texts)
        if "," in joined or '"' in joined or "\n" in joined:
            texts = [f'"{t.replace(chr(34), chr(34) * 2)}"' if ("," in t or '"' in t or "\n" in t) else t
                     for t in texts]
        columns.append(texts)
    n = len(columns[0]) if columns else 0
    if n:
        handle.write("\n".join(map(",".join, zip(*columns, strict=True))))
        handle.write("\n")
    return n
_DFE = np.array([geo.DFE_ETHNICITY[c] for c in geo.ETHNICITY_CODES], dtype=object)


def _units(rows: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (person, unit) keys in order of first appearance; returns (keys, first row, row -> key)."""
    key = rows["person"] * 3 + rows["unit"]
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return uniq, first, inverse


def _other_surname(people: People, hh: Households, p: np.ndarray) -> np.ndarray:
    """The mother's surname (for a child) or a partner's — the usual source of double-barrelling."""
    mother = hh.mother[people.hh[p]]
    return np.where(mother >= 0, people.surname[np.maximum(mother, 0)], "")


def _minority(people: People, p: np.ndarray) -> np.ndarray:
    return _CODES[people.ethnicity[p]] != "W1"


def _postcodes(rng, people, hh, p, d, rates, params: SynthParams, allow_nfa: bool) -> np.ndarray:
    pc, area = address_at(people, hh, p, d)
    prev = previous_postcode(people, hh, p, d)
    return er.postcode_defects(rng, pc, prev, area, rates.postcode_defect, params.postcode_defect_mix, allow_nfa)


def _unit_identity(rng, rows: Rows, people: People, hh: Households, rates, params: SynthParams,
                   placeholder: str):
    """Per-unit identifiers with errors, expanded to rows (education and social care)."""
    uniq, first, inv = _units(rows)
    p_u = uniq // 3
    day_u = rows["day"][first]
    base_sn = surname_at(people, p_u, day_u)
    kind = er.name_error_kind(rng, len(uniq), rates, _minority(people, p_u), params.minority_name_error_multiplier)
    fn_u, sn_u = er.apply_name_errors(rng, kind, people.forename[p_u], people.middle[p_u], base_sn,
                                      _other_surname(people, hh, p_u), people.culture[p_u])
    dob_u = er.dob_errors(rng, people.dob[p_u], day_u, rates.dob_error, params.dob_error_mix, placeholder)
    dob_missing = rng.random(len(uniq)) < rates.missing_dob
    sex_missing = rng.random(len(uniq)) < rates.missing_sex
    p, d = rows["person"], rows["day"]
    true_sn = surname_at(people, p, d)
    changed = true_sn != base_sn[inv]
    forename = np.where(changed & (kind[inv] == er.NAME_SWAP), people.forename[p], fn_u[inv])
    surname = np.where(changed, true_sn, sn_u[inv])
    return uniq, first, inv, forename, surname, dob_u[inv], dob_missing[inv], sex_missing[inv], changed


def unit_identity(rng, rows: Rows, people: People, hh: Households, rates, params: SynthParams, placeholder: str):
    """Public entry to the per-unit identity model (used by the health extract, linkage.synth.health)."""
    return _unit_identity(rng, rows, people, hh, rates, params, placeholder)


def recorded_postcodes(rng, people: People, hh: Households, p, d, rates, params: SynthParams) -> np.ndarray:
    """Postcodes as a partner records them (missing / stale per the error model; no NFA)."""
    return _postcodes(rng, people, hh, p, d, rates, params, allow_nfa=False)


def education_frame(rng, rows: Rows, people: People, hh: Households, params: SynthParams,
                    ids: IdFactory) -> tuple[Table, np.ndarray, dict[int, str]]:
    order = np.lexsort((rows["day"], rows["person"]))
    rows = {k: v[order] for k, v in rows.items()}
    uniq, first, inv, forename, surname, dob, dob_missing, _, changed = _unit_identity(
        rng, rows, people, hh, params.education, params, "jan1")
    p, d = rows["person"], rows["day"]
    first_area = address_at(people, hh, uniq // 3, rows["day"][first])[1]
    la = np.array([geo.LA_CODES[x] for x in geo.areas().la[first_area]])
    temp = uniq % 3 == 1
    upn = np.empty(len(uniq), dtype=object)
    upn[temp] = ids.temporary_upn(la[temp])
    years = days_to_ymd(rows["day"][first][~temp])[0]
    upn[~temp] = ids.upn(la[~temp], years)
    former_flag = rng.random(len(uniq)) < 0.7
    preferred = np.where(rng.random(len(uniq)) < 0.03, nm.surnames("british")[0][
        rng.integers(0, 20, size=len(uniq))], "")
    df = {
        "upn": upn[inv], "forename": forename, "middle_names": people.middle[p], "surname": surname,
        "former_surname": np.where(changed & former_flag[inv], people.surname[p], ""),
        "preferred_surname": preferred[inv],
        "dob": np.where(dob_missing, "", iso(dob)), "sex": np.where(people.male[p], "M", "F"),
        "ethnicity": _DFE[people.ethnicity[p]],
        "postcode": _postcodes(rng, people, hh, p, d, params.education, params, allow_nfa=False),
        "record_type": rows["record_type"], "event_date": iso(d),
    }
    df.update({col: rows[col] for col in EDUCATION_COLUMNS[12:-1]})
    # postcode sector of the pupil's address as an attribute (issue 17: area concentration of risk factors)
    df["home_sector"] = geo.areas().sector[address_at(people, hh, p, d)[1]]
    upn_of = {int(k): u for k, u in zip(uniq[~temp].tolist(), upn[~temp].tolist(), strict=True)}
    return _ordered(df, EDUCATION_COLUMNS), np.stack([upn, uniq // 3], axis=1), upn_of


def social_care_frame(rng, rows: Rows, people: People, hh: Households, params: SynthParams, ids: IdFactory,
                      upn_of: dict[int, str]) -> tuple[Table, np.ndarray, dict[int, str]]:
    """Returns (frame, truth pairs, each person's NHS number before adoption for the health extract)."""
    order = np.lexsort((rows["day"], rows["person"]))
    rows = {k: v[order] for k, v in rows.items()}
    uniq, first, inv, forename, surname, dob, dob_missing, sex_missing, _ = _unit_identity(
        rng, rows, people, hh, params.social_care, params, "day15")
    p, d = rows["person"], rows["day"]
    child_id = np.array(ids.child_id(len(uniq)), dtype=object)
    # UPN as copied from school: the pre-adoption UPN for units 0/1, the new one after adoption
    school_key = (uniq // 3) * 3 + np.where(uniq % 3 == 2, 2, 0)
    upn = np.array([upn_of.get(int(k), "") for k in school_key.tolist()], dtype=object)
    upn[rng.random(len(uniq)) >= params.csc_upn_known] = ""
    typo = (upn != "") & (rng.random(len(uniq)) < params.csc_upn_typo)
    for i in np.flatnonzero(typo).tolist():
        pos = int(rng.integers(4, 12))
        digit = str((int(upn[i][pos]) + int(rng.integers(1, 10))) % 10)
        upn[i] = upn[i][:pos] + digit + upn[i][pos + 1:]
    nhs = np.array(ids.nhs_number(len(uniq)), dtype=object)
    # one NHS number per person before adoption (a duplicate child id carries the same number)
    base_idx: dict[int, int] = {}
    for i, k in enumerate(uniq.tolist()):
        if k % 3 != 2:
            base_idx.setdefault(k // 3, i)
    for i, k in enumerate(uniq.tolist()):
        if k % 3 == 1:
            nhs[i] = nhs[base_idx[k // 3]]
    nhs_of = {int(k // 3): str(nhs[i]) for i, k in enumerate(uniq.tolist()) if k % 3 == 0}
    nhs[rng.random(len(uniq)) >= params.csc_nhs_known] = ""
    sex = np.where(sex_missing, "0", np.where(people.male[p], "1", "2"))
    df = {
        "child_id": child_id[inv], "forename": forename, "surname": surname,
        "dob": np.where(dob_missing, "", dmy(dob)), "sex": sex, "ethnicity": _DFE[people.ethnicity[p]],
        "nhs_number": nhs[inv], "upn": upn[inv],
        "postcode": _postcodes(rng, people, hh, p, d, params.social_care, params, allow_nfa=False),
        "record_type": rows["record_type"], "start_date": dmy(rows["start"]),
        "end_date": np.where(rows["end"] < 0, "", dmy(np.maximum(rows["end"], 0))),
    }
    df.update({col: rows[col] for col in SOCIAL_CARE_COLUMNS[12:]})
    return _ordered(df, SOCIAL_CARE_COLUMNS), np.stack([child_id, uniq // 3], axis=1), nhs_of


def police_frame(rng, rows: Rows, people: People, hh: Households, traits: Traits, params: SynthParams,
                 ids: IdFactory, crime_refs: np.ndarray) -> tuple[Table, np.ndarray, np.ndarray]:
    """Returns (frame, truth pairs, persons with an alias identity)."""
    n = len(rows["person"])
    p, d = rows["person"], rows["day"]
    rates = params.police
    unit = np.where(people.adopted[p] & (d >= people.change_day[p]), 2, 0)
    # duplicate nominals: a share of people with 2+ rows get a second id for some of their rows
    order = np.argsort(p, kind="stable")
    sp = p[order]
    rank = np.arange(n) - np.searchsorted(sp, sp, side="left")
    counts = np.bincount(p, minlength=len(people))
    dup_person = (counts >= 2) & (rng.random(len(people)) < rates.duplicate_id)
    dup_row = np.zeros(n, bool)
    dup_row[order] = dup_person[sp] & ((rank == 1) | ((rank > 1) & (rng.random(n) < 0.4)))
    unit = np.where((unit == 0) & dup_row, 1, unit)
    rows = dict(rows, unit=unit)
    uniq, _, inv = _units(rows)
    nominal = np.array(ids.nominal(len(uniq)), dtype=object)

    # alias identities of suspects/offenders
    suspects = np.unique(p[np.isin(rows["role"], ["SUSPECT", "OFFENDER"])])
    aliased = suspects[rng.random(len(suspects)) < params.police_alias_rate]
    has_alias = np.zeros(len(people), bool)
    has_alias[aliased] = True
    alias_fn, alias_sn, alias_dob = _alias_identities(rng, people, len(people))
    alias_row = has_alias[p] & (unit != 2) & (rng.random(n) < params.police_alias_row_share)

    true_sn = surname_at(people, p, d)
    kind = er.name_error_kind(rng, n, rates, _minority(people, p), params.minority_name_error_multiplier)
    kind[alias_row] = er.NAME_OK
    forename, surname = er.apply_name_errors(rng, kind, people.forename[p], people.middle[p], true_sn,
                                             _other_surname(people, hh, p), people.culture[p])
    dob = er.dob_errors(rng, people.dob[p], d, rates.dob_error * ~alias_row, params.dob_error_mix, "unknown")
    forename = np.where(alias_row, alias_fn[p], forename)
    surname = np.where(alias_row, alias_sn[p], surname)
    dob = np.where(alias_row, alias_dob[p], dob)
    dob_missing = (rng.random(n) < rates.missing_dob) & ~alias_row
    gender = np.where(rng.random(n) < rates.missing_sex, "U", np.where(people.male[p], "M", "F"))
    eth = _CODES[people.ethnicity[p]].copy()
    eth[rng.random(n) < params.police_missing_ethnicity] = ""
    offence = rows["offence"]
    yn = {f: np.where(rows[f], "Y", "N") for f in ("da", "knife", "alcohol", "gang", "cse", "cce")}
    df = {
        "nominal_id": nominal[inv], "forename": forename, "surname": surname,
        "date_of_birth": np.where(dob_missing, "", dmy(dob)), "gender": gender, "ethnicity": eth,
        "postcode": _postcodes(rng, people, hh, p, d, rates, params, allow_nfa=True),
        "crime_ref": crime_refs, "ho_class": np.where(offence >= 0, HO_CLASS[offence], ""),
        "offence_description": np.where(offence >= 0, DESCRIPTION[offence], "Missing person report"),
        "committed_from": iso_minutes(d * 1440 + rows["minute"]), "role": rows["role"],
        "da_flag": yn["da"], "knife_flag": yn["knife"], "alcohol_flag": yn["alcohol"], "gang_flag": yn["gang"],
        "cse_flag": yn["cse"], "cce_flag": yn["cce"], "location_type": rows["location"], "npa": rows["npa"],
        "markers": rows["markers"],
        # SNA profile attributes (issue 17): where it happened, the victim-offender relationship, and the
        # person's age and recorded sex at the occurrence (attributes for the profile, not identifiers)
        "district": geo.areas().district[rows["area"]], "victim_relationship": rows["relationship"],
        "age_at_occurrence": np.floor((d - people.dob[p]) / 365.25).astype(np.int64),
        "person_sex": np.where(people.male[p], "M", "F"),
    }
    return _ordered(df, POLICE_COLUMNS), np.stack([nominal, uniq // 3], axis=1), has_alias


def _alias_identities(rng, people: People, n: int):
    """An alias forename (same naming culture), often a different surname, sometimes another DOB."""
    fn = people.forename.copy()
    sn = people.surname.copy()
    for c in np.unique(people.culture):
        for male in (True, False):
            idx = np.flatnonzero((people.culture == c) & (people.male == male))
            if len(idx):
                values, pr = nm.forenames(c, "M" if male else "F")
                fn[idx] = values[rng.choice(len(values), size=len(idx), p=pr)]
        idx = np.flatnonzero(people.culture == c)
        values, pr = nm.surnames(c if c in nm.ALL_CULTURES else "british")
        new_sn = values[rng.choice(len(values), size=len(idx), p=pr)]
        sn[idx] = np.where(rng.random(len(idx)) < 0.6, new_sn, people.surname[idx])
    same = fn == people.forename
    fn[same] = [er.forename_variant(rng, x) for x in people.forename[same]]
    dob = np.where(rng.random(n) < 0.5, people.dob + rng.integers(-800, 800, size=n), people.dob)
    return fn, sn, dob


def people_frame(people: People, person_ids: np.ndarray, household_ids: np.ndarray, keep: np.ndarray,
                 has_alias: np.ndarray) -> Table:
    k = keep
    changed = people.change_day[k] != NEVER
    return _ordered({
        "person_id": person_ids[k], "household_id": household_ids[people.hh[k]],
        "is_child": people.is_child[k].astype(int), "forename": people.forename[k],
        "middle_names": people.middle[k], "surname": people.surname[k], "dob": iso(people.dob[k]),
        "sex": np.where(people.male[k], "M", "F"), "ethnicity": _CODES[people.ethnicity[k]],
        "surname_changed_to": np.where(changed, people.new_surname[k], ""),
        "surname_change_date": np.where(changed, iso(np.where(changed, people.change_day[k], 0)), ""),
        "adopted": people.adopted[k].astype(int), "police_alias": has_alias[k].astype(int),
    }, PEOPLE_COLUMNS)
