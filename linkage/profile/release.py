"""Every released number of ``linkage profile`` passes through here, once, under disclosure control.

:class:`ProfileRelease` registers each count in one :class:`linkage.cohort.disclosure.CellRegistry`
with the additive relations between them (a total and its breakdown, a flag count and its hidden
complement), protects them together (small counts withheld, secondary suppression, rounding), and then
renders tables in which rates and percentages are computed from the *released* (rounded) counts.

The project-wide release checks run here too, as for cohort releases: :meth:`ProfileRelease.check`
attacks the protected release with the integer-programming intruder of :mod:`linkage.cohort.intruder`
(every released cell, every documented relation, and the public area code lists: an LA is the sum of its
districts, NPAs add up to the districts they cover) and withholds the cells an attack leans on until no
sensitive count can be narrowed below the rounding base; :meth:`check_code_lists` refuses a category
value that is not in the config's code lists; and :meth:`check_earlier` attacks it together with earlier
profile releases recorded in the VRN's release register.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from linkage.cohort.config import POLICY_FLOOR, DisclosureSettings
from linkage.cohort.disclosure import CellRegistry, DisclosureLog, released_share
from linkage.cohort.intruder import Cell, IntruderReport, ReleaseRefused, attack_cells, attack_cells_pair
from linkage.cohort.tables import WITHHELD
from linkage.errors import LinkageInputError

MAX_REPAIR_ROUNDS = 8


@dataclass
class ProfileRelease:
    settings: DisclosureSettings
    reg: CellRegistry = field(init=False)
    log: DisclosureLog = field(default_factory=DisclosureLog)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # column -> allowed category values (from the config's code lists), checked before anything is written
    code_lists: dict[str, set[str]] = field(default_factory=dict)
    # Public relations between cells that the tables' own structure does not show (the area code lists'
    # nesting): always known to the intruder, and registered for protection unless switched off (tests do,
    # to show the attack they stop).
    register_code_list_relations: bool = True
    known_relations: list[tuple[Hashable, list[Hashable]]] = field(default_factory=list)
    intruder: IntruderReport | None = None
    # what each population of the release is made of (ids, VRN-internal): "occurrences|period" etc., for
    # the release register (two releases whose populations differ by a few members can be differenced)
    populations: dict[str, list[str]] = field(default_factory=dict)
    _table_keys: dict[str, set] = field(default_factory=dict)
    _protected: bool = False

    def __post_init__(self) -> None:
        self.reg = CellRegistry(self.settings)

    # --- registration --------------------------------------------------------------------------------
    def count(self, key: tuple, value: int, hidden: bool = False) -> tuple:
        self.reg.add(key, int(value), hidden=hidden)
        return key

    def constrain(self, total: Hashable, parts: Sequence[Hashable]) -> None:
        """``total`` = sum of ``parts`` (all registered)."""
        self.reg.constrain(total, list(parts))

    def breakdown(self, prefix: tuple, counts: pd.Series, total: tuple | None = None) -> list[tuple]:
        """Register ``prefix + (category,)`` per category; tie them to ``total`` (registered if new)."""
        keys = [self.count((*prefix, str(cat)), int(n)) for cat, n in counts.items()]
        if total is not None:
            if total not in self.reg.values:
                self.count(total, int(counts.sum()))
            self.constrain(total, keys)
        return keys

    def share(self, key: tuple, n: int, total: tuple) -> None:
        """A count that is a share of ``total``: its complement is hidden but protected too."""
        self.count(key, n)
        comp = ("_not", key)
        self.count(comp, self.reg.values[total] - int(n), hidden=True)
        self.constrain(total, [key, comp])

    def public_relation(self, name: Hashable, left: Sequence[Hashable], right: Sequence[Hashable]) -> None:
        """sum(``left``) = sum(``right``) by a public code list (e.g. NPAs and the districts they cover).
        Recorded only when it holds on the data (an intruder assuming it elsewhere would be misled)."""
        values = self.reg.values
        if not left or not right or sum(values[k] for k in left) != sum(values[k] for k in right):
            return
        group = ("_code_list", name)
        self.count(group, sum(values[k] for k in left), hidden=True)
        for side in (list(left), list(right)):
            self.known_relations.append((group, side))
            if self.register_code_list_relations:
                self.constrain(group, side)

    def protect(self) -> None:
        self.reg.protect()
        self._protected = True

    # --- the release checks ----------------------------------------------------------------------------
    def cells(self) -> list[Cell]:
        """Every registered count as the intruder sees it (released value, or None when withheld/hidden)."""
        table_of = {k: name for name, keys in self._table_keys.items() for k in keys}
        return [Cell(repr(k), table_of.get(k, "(hidden)"), self.reg.released(k), v, k in self.reg.hidden)
                for k, v in self.reg.values.items()]

    def relations(self) -> list[tuple[str, list[str]]]:
        """The relations an intruder knows: every table's structure (the registered ones, each documented in
        docs/needs-assessment.md) and the code lists' nesting, whether or not it was registered."""
        seen = set()
        out = []
        for total, parts in [*self.reg.constraints, *self.known_relations]:
            key = (repr(total), tuple(sorted(map(repr, parts))))
            if key not in seen:
                seen.add(key)
                out.append((repr(total), [repr(p) for p in parts]))
        return out

    def check(self, repair: bool | None = None) -> IntruderReport:
        """Attack the protected release; while a sensitive count can be narrowed below the rounding base,
        withhold the released cells the attack leans on (``secondary_intruder``) and attack again. Under a
        logged ``risk_accepted`` the verdict is recorded but nothing is repaired (as for cohorts)."""
        assert self._protected, "protect() before check()"
        repair = self.settings.risk_accepted is None if repair is None else repair
        by_name = {repr(k): k for k in self.reg.values}
        report = attack_cells(self.cells(), self.relations(), self.settings)
        for _ in range(MAX_REPAIR_ROUNDS if repair else 0):
            leaned = {by_name[c[2]] for t in report.failures for c in t.leans_on if c[2] in by_name}
            leaned -= set(self.reg.suppressed) | self.reg.hidden
            if report.passed or not leaned:
                break
            for k in sorted(leaned, key=repr):
                self.reg.withhold(k, "secondary_intruder")
            self.reg.protect()
            report = attack_cells(self.cells(), self.relations(), self.settings)
        self.intruder = report
        return report

    @staticmethod
    def population_of(key: Hashable) -> str | None:
        """The population a cell counts members of (None: not one-per-member, e.g. people per occurrence)."""
        if isinstance(key, tuple) and key and key[0] in ("_not", "_code_list"):
            return ProfileRelease.population_of(key[1]) if key[0] == "_not" else "occurrences|period"
        if not isinstance(key, tuple) or not key:
            return None
        if key[0] == "sv" or (key[0] == "dd" and len(key) > 2 and key[2] not in ("victim", "suspect")
                              and not str(key[2]).startswith("current_year")
                              and key[2] != "month_of_current_year"):
            return "occurrences|period"
        if key[0] == "yoy":
            return f"occurrences|{key[1]}_year"
        if key[0] == "area":
            return "young_people|area"
        return None

    def check_earlier(self, register: Any, name: str) -> None:
        """Refuse a release whose populations differ from an earlier release's by 1-9 members (it could be
        differenced), and otherwise attack it together with each earlier release of ``name`` in the VRN's
        release register: every count of the same population may move by at most that population's change."""
        limit = max(self.settings.suppress_max, POLICY_FLOOR["suppress_max"])
        now_fp = {p: {register.fingerprint(x) for x in ids} for p, ids in self.populations.items()}
        cells, rels = self.cells(), self.relations()
        key_of = {repr(k): k for k in self.reg.values}
        for earlier in register.cell_releases(name):
            drift = {p: len(now_fp[p].symmetric_difference(members))
                     for p, members in earlier["populations"].items() if p in now_fp}
            for p, d in sorted(drift.items()):
                if 1 <= d <= limit:
                    raise ReleaseRefused(
                        f"release refused: population '{p}' differs from the one in release {earlier['release_id']} "
                        f"({earlier['created'][:10]}) by 1-{limit} members, so the two releases could be "
                        "differenced; widen the change or reuse the earlier release; nothing was written")
            linked = {c.name: drift[pop] for c in cells
                      if (pop := self.population_of(key_of[c.name])) is not None and pop in drift}
            then = ([Cell(n, t, r, v, h) for n, t, r, v, h in earlier["cells"]],
                    [(t, list(ps)) for t, ps in earlier["relations"]])
            joint = attack_cells_pair((cells, rels), then, linked, self.settings)
            if not joint.passed and self.settings.risk_accepted is None:
                raise ReleaseRefused(joint.error_line().replace(
                    "release refused:", f"release refused: together with release {earlier['release_id']},"))

    def check_code_lists(self) -> None:
        """Every category value of every table must come from the config's code lists, never from a payload."""
        for name, rows in self.tables.items():
            for i, row in enumerate(rows):
                for column, allowed in self.code_lists.items():
                    v = row.get(column)
                    if v is not None and v is not WITHHELD and str(v) not in allowed:
                        raise LinkageInputError(f"release refused: a category value is not in the config's code "
                                                f"lists (table {name}, row {i + 1})", field=column)

    # --- reading back --------------------------------------------------------------------------------
    def value(self, key: Hashable) -> Any:
        assert self._protected, "protect() before reading released values"
        v = self.reg.released(key)
        return WITHHELD if v is None else v

    def _share(self, key: Hashable, total: Hashable) -> tuple[float, float, float] | None:
        """(%, CI low, CI high) from the released counts only (the project-wide rule of
        :func:`linkage.cohort.disclosure.released_share`); None when either is withheld or the released
        denominator is below the threshold."""
        n, d = self.value(key), self.value(total)
        if n is WITHHELD or d is WITHHELD or not d:
            return None
        return released_share(int(n), int(d), self.settings)

    def pct(self, key: Hashable, total: Hashable) -> Any:
        """% from released counts; withheld when either is withheld or the released denominator is too small."""
        share = self._share(key, total)
        return WITHHELD if share is None else share[0]

    def ci(self, key: Hashable, total: Hashable) -> tuple[Any, Any]:
        share = self._share(key, total)
        return (WITHHELD, WITHHELD) if share is None else (share[1], share[2])

    def rate(self, key: Hashable, population: float | None, per: float = 1000.0) -> Any:
        n = self.value(key)
        if population is None or not population or pd.isna(population):
            return None  # no denominator: 'z'
        if n is WITHHELD:
            return WITHHELD
        return round(per * n / population, 1)

    def add_table(self, name: str, rows: list[dict[str, Any]], keys: set) -> None:
        self.tables[name] = rows
        self._table_keys[name] = keys

    def finish_log(self) -> None:
        for name, keys in self._table_keys.items():
            self.reg.log_to(self.log, name, keys)
