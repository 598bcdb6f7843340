"""Release register: the populations each earlier release described, so a new one cannot be differenced.

Two releases whose cohorts differ by one person (the cohort ``end`` moved by a day) give that person's
whole profile by subtraction. Rounding hides most of it, but not all (a count that crosses a rounding
boundary moves by 5), and cell-key perturbation would not help either: with the same contributors giving
the same noise, every cell whose value changes is one the new person is in. So the VRN keeps a register
(VRN-internal, never released) of the populations every release described — the cohort, each sub-group,
each category of each characteristic — and refuses a release in which any population that was shown in
an earlier release and is shown again differs from it by 1-9 people. Differences of 0 (the same people)
or of 10 or more (a difference table with the 10-5 rule's own threshold) are allowed.

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
from linkage.cohort.intruder import ReleaseRefused
from linkage.errors import LinkageInputError

__all__ = ["ReleaseRegister", "populations"]

REGISTER_KIND = "cohort-release-register"


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
            for name, members in earlier["populations"].items():
                if name not in now:
                    continue
                diff = len(now[name].symmetric_difference(members))
                if 1 <= diff <= limit:
                    raise ReleaseRefused(
                        f"release refused: population '{name}' differs from the one in release "
                        f"{earlier['release_id']} ({earlier['created'][:10]}) by 1-{limit} people, so the two "
                        "releases could be differenced; widen the change or reuse the earlier release; "
                        "nothing was written")

    def record(self, release_id: str, cohort: str, pops: dict[str, tuple[bool, list[str]]]) -> None:
        """Add a written release and save the register atomically."""
        self.releases.append({
            "release_id": release_id, "cohort": cohort,
            "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "populations": {name: sorted(self.fingerprint(p) for p in ids)
                            for name, (shown, ids) in pops.items() if shown}})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"kind": REGISTER_KIND, "salt": self.salt, "releases": self.releases}),
                       encoding="utf-8")
        os.replace(tmp, self.path)
