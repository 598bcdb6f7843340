"""Synthetic multi-agency extracts for Leicester, Leicestershire and Rutland (``linkage synth``).

``generate_extracts(people, seed, out_dir)`` writes police.csv, education.csv and social_care.csv in the
raw layouts of docs/data-contracts.md §1, plus truth.csv (source, local_id, person_id), people.csv (true
identities, synthetic only) and manifest.json. The same people count and seed give byte-identical files.
Generation runs in batches of households so memory stays bounded; see docs/synthetic-data.md.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from linkage.errors import LinkageConfigError
from linkage.io import PhaseTimer, atomic_output_dir, progress, write_json
from linkage.synth.params import SynthParams

__all__ = ["SynthParams", "generate_extracts", "load_params"]


def load_params(path: str | Path) -> SynthParams:
    """Read generator settings from YAML (any subset of :class:`SynthParams` fields)."""
    from linkage.config import load_yaml_model

    return load_yaml_model(path, SynthParams)

_SOURCES = ("police", "education", "social_care", "health")


class _CrimeRefs:
    """``LC-YYYYMMDD-NNNNN`` / ``MP-…`` references, numbered per day across the whole run."""

    def __init__(self) -> None:
        self.attendances = 0
        self.base = (dt.date(1990, 1, 1) - dt.date(1970, 1, 1)).days
        self.next = {"LC": np.zeros(60 * 366, np.int64), "MP": np.zeros(60 * 366, np.int64)}

    def next_attendance(self, n: int) -> int:
        """First number of a block of ``n`` A&E attendance ids (unique across the run)."""
        first, self.attendances = self.attendances, self.attendances + n
        return first

    def assign(self, occ: np.ndarray, day: np.ndarray, missing: np.ndarray) -> np.ndarray:
        from linkage.synth.timeutil import iso

        uniq, first, inverse = np.unique(occ, return_index=True, return_inverse=True)
        o_day, o_mp = day[first], missing[first]
        number = np.zeros(len(uniq), np.int64)
        for prefix, mask in (("LC", ~o_mp), ("MP", o_mp)):
            idx = np.flatnonzero(mask)
            idx = idx[np.lexsort((uniq[idx], o_day[idx]))]
            d = o_day[idx] - self.base
            start = np.searchsorted(d, d, side="left")
            rank = np.arange(len(d)) - start
            counter = self.next[prefix]
            number[idx] = counter[d] + rank + 1
            np.add.at(counter, d, 1)
        dates = np.char.replace(iso(o_day).astype(str), "-", "")
        refs = np.array([f"{'MP' if m else 'LC'}-{s}-{n:05d}" for m, s, n in
                         zip(o_mp.tolist(), dates.tolist(), number.tolist(), strict=True)], dtype=object)
        return refs[inverse]


def _write_population(path: Path, tables: list) -> None:
    """population.csv: SYNTHETIC residents by postcode sector, age band and sex (rate denominators)."""
    from linkage.synth.sna import POPULATION_COLUMNS, merge_population
    from linkage.synth.writers import write_table

    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(POPULATION_COLUMNS) + "\n")
        write_table(handle, merge_population(tables))


def generate_extracts(people: int, seed: int, out_dir: str | Path, *, params: SynthParams | dict | None = None,
                      quiet: bool = False, **overrides: Any) -> dict[str, Any]:
    """Write synthetic extracts for ``people`` people (each in at least one extract) into ``out_dir``.

    ``params`` (or keyword ``overrides`` of its fields) set error rates and population settings.
    Returns a summary: row and id counts per source, people, high-harm count and timings.
    """
    from linkage.synth.batch import generate_batch
    from linkage.synth.ids import IdFactory
    from linkage.synth.writers import (
        EDUCATION_COLUMNS,
        PEOPLE_COLUMNS,
        POLICE_COLUMNS,
        SOCIAL_CARE_COLUMNS,
        TRUTH_COLUMNS,
        write_table,
    )

    if people < 1:
        raise LinkageConfigError("people must be at least 1")
    base = params.model_dump() if isinstance(params, SynthParams) else dict(params or {})
    try:
        p = SynthParams.model_validate({**base, **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LinkageConfigError(f"synth params: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    timer = PhaseTimer(echo=not quiet)
    from linkage.synth.health import HEALTH_COLUMNS

    columns = {"police": POLICE_COLUMNS, "education": EDUCATION_COLUMNS, "social_care": SOCIAL_CARE_COLUMNS,
               "health": HEALTH_COLUMNS, "truth": TRUTH_COLUMNS, "people": PEOPLE_COLUMNS}
    counts = {name: 0 for name in columns}
    ids, refs = IdFactory(seed), _CrimeRefs()
    populations: list = []
    summary: dict[str, Any] = {"seed": seed, "people": people, "batches": 0, "high_harm_people": 0}
    with atomic_output_dir(out_dir) as tmp, timer.phase("generate and write extracts"):
        handles = {name: open(tmp / f"{name}.csv", "w", encoding="utf-8", newline="") for name in columns}
        try:
            for name, cols in columns.items():
                handles[name].write(",".join(cols) + "\n")
            remaining, batch, person_offset, hh_offset = people, 0, 0, 0
            with progress(total=people, desc="synth", unit="people", quiet=quiet) as bar:
                while remaining > 0:
                    # small runs draw only as many households as they need (about 2.6 people with a record
                    # each), erring low: trimming a batch drops whole households, and with them more
                    # domestic-abuse occurrences (victim and suspect live together) than others
                    n_households = min(p.households_per_batch, max(20, int(remaining / 2.8) + 10))
                    rng = np.random.default_rng([seed, batch])
                    frames, kept, n_hh, n_hh_people, high_harm = generate_batch(
                        rng, n_households, remaining, p, ids, refs, person_offset, hh_offset)
                    populations.append(frames.pop("population"))
                    for name, table in frames.items():
                        counts[name] += write_table(handles[name], table)
                    summary["high_harm_people"] += high_harm
                    remaining -= kept
                    person_offset += n_hh_people
                    hh_offset += n_hh
                    batch += 1
                    bar.update(kept)
        finally:
            for handle in handles.values():
                handle.close()
        _write_population(tmp / "population.csv", populations)
        summary["batches"] = batch
        summary["rows"] = {name: counts[name] for name in _SOURCES}
        summary["truth_rows"] = counts["truth"]
        # no timings in the manifest: it must be byte-identical for the same people count and seed
        write_json(tmp / "manifest.json", {"generator": "linkage synth", "summary": summary,
                                           "params": p.model_dump(mode="json")})
    summary["timings"] = timer.timings
    return summary
