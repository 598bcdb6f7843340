"""The messy synthetic profile: one deduplication file (several records per person) with heavy errors.

Unlike the three-partner generator, this one is not calibrated to the project's own data: it mimics an
outside set nobody tuned for (names from the naming cultures plus the formal names of a public nickname
list, dates of birth across a century, ~20% missing per field, one-character typos, nicknames,
digit typos in dates that are often not calendar dates, people moving house, relatives sharing a
surname and address). Writes ``people.csv`` (record_id, given_name, surname, date_of_birth as
DD/MM/YYYY, sex, postcode) and ``truth.csv`` (source, local_id, person_id).
"""

from __future__ import annotations

import csv
import string
from pathlib import Path
from typing import Any

import numpy as np

from linkage.io import atomic_output_dir, check_output_dir, write_json
from linkage.synth import geography as geo
from linkage.synth import names as nm
from linkage.synth.errors import digit_typo_string, one_char_typo
from linkage.synth.params import MessyParams

SOURCE = "messy"


def _name_pool() -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """Forenames per sex and surnames, pooled over the naming cultures (uniform over cultures)."""
    from nicknames import NickNamer

    namer = NickNamer()
    pools: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for sex in ("M", "F"):
        values: dict[str, float] = {}
        for culture in nm.ALL_CULTURES:
            for adult in (False, True):
                try:
                    v, p = nm.forenames(culture, sex, adult)
                except KeyError:
                    continue
                for name, w in zip(v, p, strict=True):
                    values[name] = values.get(name, 0.0) + float(w)
        pools[sex] = (np.array(list(values), dtype=object), np.array(list(values.values())))
    # formal names with nicknames, so nickname errors have something to act on
    formal = sorted(n for n in namer.nickname_lookup if len(n) > 3 and namer.nicknames_of(n))
    for sex in ("M", "F"):
        v, w = pools[sex]
        extra = np.array([n.capitalize() for n in formal[(0 if sex == "M" else 1)::2]], dtype=object)
        pools[sex] = (np.concatenate([v, extra]), np.concatenate([w / w.sum() * 0.6,
                                                                   np.full(len(extra), 0.4 / max(len(extra), 1))]))
    sv: dict[str, float] = {}
    for culture in nm.ALL_CULTURES:
        v, p = nm.surnames(culture)
        for name, w in zip(v, p, strict=True):
            sv[name] = sv.get(name, 0.0) + float(w)
    surnames = (np.array(list(sv), dtype=object), np.array(list(sv.values())))
    return pools, surnames


def generate_messy(people: int, seed: int, out_dir: str | Path, params: MessyParams | None = None,
                   *, quiet: bool = True) -> dict[str, Any]:
    """Write the messy deduplication set for ``people`` people; returns a summary."""
    from nicknames import NickNamer

    p = params or MessyParams.model_validate({})
    check_output_dir(out_dir)
    rng = np.random.default_rng(seed)
    namer = NickNamer()
    pools, (sur_v, sur_p) = _name_pool()
    sex = np.where(rng.random(people) < 0.5, "M", "F")
    given = np.empty(people, dtype=object)
    for s in ("M", "F"):
        idx = np.flatnonzero(sex == s)
        v, w = pools[s]
        given[idx] = rng.choice(v, size=len(idx), p=w / w.sum())
    surname = rng.choice(sur_v, size=people, p=sur_p / sur_p.sum())
    start = np.datetime64(f"{p.birth_year_min}-01-01")
    span = int((np.datetime64(f"{p.birth_year_max}-12-31") - start).astype(int))
    dob = start + rng.integers(0, span + 1, size=people).astype("timedelta64[D]")
    area_ids = rng.choice(len(geo.areas()), size=people, p=geo.areas().weight)
    postcode = geo.random_postcodes(rng, area_ids)
    # households: some people share a surname and postcode with the person before them
    share = np.flatnonzero(rng.random(people) < p.household_share)
    share = share[share > 0]
    surname[share], postcode[share] = surname[share - 1], postcode[share - 1]

    n_records = 1 + rng.poisson(p.records_per_person_mean - 1, size=people)
    person = np.repeat(np.arange(people), n_records)
    order = rng.permutation(len(person))
    person = person[order]
    rows = []
    letters = string.ascii_lowercase
    for i, pid in enumerate(person.tolist()):
        g, s = str(given[pid]), str(surname[pid])
        d = dob[pid].astype(object)
        dd, mm, yy = f"{d.day:02d}", f"{d.month:02d}", f"{d.year:04d}"
        pc = str(postcode[pid])
        u = rng.random(12)
        if u[0] < p.nickname:
            nicks = sorted(namer.nicknames_of(g))
            if nicks:
                g = nicks[int(rng.integers(len(nicks)))].capitalize()
        if u[1] < p.name_typo:
            g = one_char_typo(rng, g, letters)
        if u[2] < p.name_typo:
            s = one_char_typo(rng, s, letters)
        if u[3] < p.surname_change:
            s = str(rng.choice(sur_v, p=sur_p / sur_p.sum()))
        if u[4] < p.name_swap:
            g, s = s, g
        if u[5] < p.dob_day_month_swap and int(dd) <= 12:
            dd, mm = mm, dd
        if u[6] < p.dob_year_off:
            yy = f"{int(yy) + (1 if rng.random() < 0.5 else -1):04d}"
        if u[7] < p.dob_digit_typo:
            yy, mm, dd = digit_typo_string(rng, yy + mm + dd)
        if u[8] < p.postcode_moved:
            pc = str(geo.random_postcodes(rng, rng.choice(len(geo.areas()), size=1, p=geo.areas().weight))[0])
        if u[9] < p.postcode_typo:
            pc = one_char_typo(rng, pc, string.ascii_uppercase + string.digits, keep_space=True)
        values = [g, s, f"{dd}/{mm}/{yy}", str(sex[pid]), pc]
        missing = rng.random(5) < p.missing
        values = ["" if m else v for v, m in zip(values, missing, strict=True)]
        rows.append([f"R{i:07d}", *values, f"P{pid:07d}"])
    with atomic_output_dir(out_dir) as tmp:
        with (tmp / "people.csv").open("w", newline="", encoding="utf-8") as fh:
            people_csv = csv.writer(fh)
            people_csv.writerow(["record_id", "given_name", "surname", "date_of_birth", "sex", "postcode"])
            people_csv.writerows(r[:6] for r in rows)
        with (tmp / "truth.csv").open("w", newline="", encoding="utf-8") as fh:
            truth_csv = csv.writer(fh)
            truth_csv.writerow(["source", "local_id", "person_id"])
            truth_csv.writerows([SOURCE, r[0], r[6]] for r in rows)
        summary = {"profile": "messy", "people": people, "records": len(rows), "seed": seed,
                   "params": p.model_dump(mode="json")}
        write_json(tmp / "summary.json", summary)
    return summary
