"""Release register: the populations each earlier release described, so a new one cannot be differenced.

Two releases whose cohorts differ by one person (the cohort ``end`` moved by a day) give that person's
whole profile by subtraction. Rounding hides most of it, but not all (a count that crosses a rounding
boundary moves by 5), and cell-key perturbation would not help either: with the same contributors giving
the same noise, every cell whose value changes is one the new person is in. So the VRN keeps a register
(VRN-internal, never released) of the populations every release described — the cohort, each sub-group,
each category of each characteristic — and refuses a release in which the cohort or a sub-group that
was shown in an earlier release and is shown again differs from it by 1-9 people. Differences of 0 (the same people)
or of 10 or more (a difference table with the 10-5 rule's own threshold) are allowed, and then the
intruder attacks the new release together with each earlier release of the same cohort
(``intruder.attack_pair``): every count shown in both may move by at most its population's change.
The register therefore also keeps each release's tables and true counts (it is as sensitive as the
linked data and stays with the VRN).

People are stored as keyed fingerprints (HMAC-SHA256 of the VRN ``person_id`` under a random salt kept
in the register), so the register says nothing without the VRN's crosswalk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linkage.cohort.config import POLICY_FLOOR, DisclosureSettings
from linkage.cohort.intruder import IntruderReport, ReleaseRefused, attack_pair
from linkage.cohort.tables import WITHHELD, Release
from linkage.errors import LinkageInputError

__all__ = ["ReleaseRegister", "populations"]

REGISTER_KIND = "cohort-release-register"
_WITHHELD_JSON = "__withheld__"


def _to_json(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {t: [{k: (_WITHHELD_JSON if v is WITHHELD else v) for k, v in r.items()} for r in rows]
            for t, rows in tables.items()}


def _from_json(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {t: [{k: (WITHHELD if v == _WITHHELD_JSON else v) for k, v in r.items()} for r in rows]
            for t, rows in tables.items()}


def populations(builder) -> dict[str, tuple[bool, list[str]]]:
    """Population name -> (shown in this release, person ids): the cohort, sub-groups, categories."""
    out: dict[str, tuple[bool, list[str]]] = {}
    for g in builder.groups:
        ids = builder.members(g)["person_id"].astype(str).tolist()
        out[f"people|{g}"] = (builder.reg.released(("people", g)) is not None, ids)
    for dim in builder.characteristics():
        for cat in builder.categories(dim):
            ids = builder.p.loc[builder.p[dim] == cat, "person_id"].astype(str).tolist()
            out[f"char|{dim}|{cat}"] = (builder.reg.released(("char", dim, cat)) is not None, ids)
    return out


@dataclass
class ReleaseRegister:
    path: Path
    salt: str
    releases: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def open(cls, path: str | Path) -> ReleaseRegister:
        path = Path(path)
        if not path.exists():
            return cls(path, secrets.token_hex(16))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise LinkageInputError("not a readable release register", file=str(path)) from None
        if not isinstance(data, dict) or data.get("kind") != REGISTER_KIND or not isinstance(data.get("salt"), str):
            raise LinkageInputError("not a release register", file=str(path), field="kind")
        return cls(path, data["salt"], list(data.get("releases", [])))

    def fingerprint(self, person_id: str) -> str:
        return hmac.new(bytes.fromhex(self.salt), person_id.encode(), hashlib.sha256).hexdigest()[:24]

    def check(self, pops: dict[str, tuple[bool, list[str]]], settings: DisclosureSettings) -> None:
        """Refuse if any population shown now and in an earlier release differs from it by 1-9 people."""
        limit = max(settings.suppress_max, POLICY_FLOOR["suppress_max"])
        now = {name: {self.fingerprint(p) for p in ids} for name, (shown, ids) in pops.items() if shown}
        for earlier in self.releases:
            shown_then = set(earlier.get("shown", earlier["populations"]))
            for name, members in earlier["populations"].items():
                # The cohort and its sub-groups: categories of characteristics are left to the joint attack
                # (their small drifts are the rule rather than the exception between any two releases).
                if not name.startswith("people|") or name not in now or name not in shown_then:
                    continue
                diff = len(now[name].symmetric_difference(members))
                if 1 <= diff <= limit:
                    raise ReleaseRefused(
                        f"release refused: population '{name}' differs from the one in release "
                        f"{earlier['release_id']} ({earlier['created'][:10]}) by 1-{limit} people, so the two "
                        "releases could be differenced; widen the change or reuse the earlier release; "
                        "nothing was written")

    def attack_with_earlier(self, cohort: str, pops: dict[str, tuple[bool, list[str]]], release: Release,
                            settings: DisclosureSettings) -> list[tuple[str, IntruderReport]]:
        """Attack the new release together with every earlier release of the same cohort."""
        now_fp = {name: {self.fingerprint(p) for p in ids} for name, (_, ids) in pops.items()}
        now = {"tables": release.tables, "truth": release.truth, "facts": release.facts, "settings": settings}
        out = []
        for earlier in self.releases:
            if earlier.get("cohort") != cohort or "tables" not in earlier:
                continue
            drift = {name: len(now_fp[name].symmetric_difference(members))
                     for name, members in earlier["populations"].items() if name in now_fp}
            then = {"tables": _from_json(earlier["tables"]), "facts": earlier["facts"],
                    "truth": {(t, int(i), c): int(v) for t, i, c, v in earlier["truth"]},
                    "settings": DisclosureSettings.model_validate(earlier["settings"])}
            out.append((earlier["release_id"], attack_pair(now, then, settings, drift, WITHHELD)))
        return out

    def cell_releases(self, name: str) -> list[dict[str, Any]]:
        """Earlier releases of ``name`` recorded cell by cell (:meth:`record_cells`, e.g. profiles)."""
        return [r for r in self.releases if r.get("kind") == "cells" and r.get("cohort") == name]

    def record_cells(self, release_id: str, name: str, pops: dict[str, list[str]], cells: list[Any],
                     relations: list[tuple[str, list[str]]], settings: DisclosureSettings) -> None:
        """Add a release described cell by cell (:class:`linkage.cohort.intruder.Cell`) and save atomically.
        Its populations (e.g. occurrences) are stored as fingerprints, as for cohorts."""
        self.releases.append({
            "release_id": release_id, "cohort": name, "kind": "cells",
            "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "populations": {p: sorted(self.fingerprint(x) for x in ids) for p, ids in pops.items()},
            "shown": sorted(pops), "cells": [[c.name, c.table, c.released, c.truth, c.hidden] for c in cells],
            "relations": [[t, list(ps)] for t, ps in relations], "settings": settings.model_dump(mode="json")})
        self._save()

    def record(self, release_id: str, cohort: str, pops: dict[str, tuple[bool, list[str]]],
               release: Release, settings: DisclosureSettings) -> None:
        """Add a written release and save the register atomically."""
        self.releases.append({
            "release_id": release_id, "cohort": cohort,
            "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "populations": {name: sorted(self.fingerprint(p) for p in ids) for name, (_, ids) in pops.items()},
            "shown": sorted(name for name, (shown, _) in pops.items() if shown),
            "tables": _to_json(release.tables), "facts": release.facts,
            "truth": [[t, i, c, int(v)] for (t, i, c), v in release.truth.items()],
            "settings": settings.model_dump(mode="json")})
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"kind": REGISTER_KIND, "salt": self.salt, "releases": self.releases}),
                       encoding="utf-8")
        os.replace(tmp, self.path)
