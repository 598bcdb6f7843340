"""Every released number of ``linkage profile`` passes through here, once, under disclosure control.

:class:`ProfileRelease` registers each count in one :class:`linkage.cohort.disclosure.CellRegistry`
with the additive relations between them (a total and its breakdown, a flag count and its hidden
complement), protects them together (small counts withheld, secondary suppression, rounding), and then
renders tables in which rates and percentages are computed from the *released* (rounded) counts. This is
the one hook for the project-wide release check: route :meth:`ProfileRelease.protect` through it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from linkage.cohort.config import DisclosureSettings
from linkage.cohort.disclosure import CellRegistry, DisclosureLog, released_share
from linkage.cohort.tables import WITHHELD


@dataclass
class ProfileRelease:
    settings: DisclosureSettings
    reg: CellRegistry = field(init=False)
    log: DisclosureLog = field(default_factory=DisclosureLog)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # column -> allowed category values, checked before writing (cohort.report.check_code_lists); the
    # profile's categories come from its config and the shipped code lists, so none is registered yet
    code_lists: dict[str, set[str]] = field(default_factory=dict)
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

    def protect(self) -> None:
        self.reg.protect()
        self._protected = True

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
