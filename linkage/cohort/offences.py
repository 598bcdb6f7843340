"""Offence taxonomy applied to police rows: which rows fall in which named offence group.

A group is a set of rules (Home Office class, optionally narrowed by a description regex) plus the
groups it includes. GBH without intent shares class 8N with common assault with injury, so it is told
apart by its description, which the police payload carries for that reason.
"""

from __future__ import annotations

import re

import pandas as pd

from linkage.cohort.config import OffenceTaxonomy


def normalise_ho_class(values: pd.Series) -> pd.Series:
    """Upper-case, strip, and drop leading zeros ('05D' -> '5D'); missing stays missing."""
    s = values.astype("string").str.strip().str.upper()
    return s.str.replace(r"^0+(?=\d)", "", regex=True)


class OffenceClassifier:
    """Evaluates taxonomy groups on a police payload frame (vectorised, cached per group)."""

    def __init__(self, taxonomy: OffenceTaxonomy, ho_class: pd.Series, description: pd.Series) -> None:
        self.taxonomy = taxonomy
        self.ho_class = normalise_ho_class(ho_class)
        self.description = description.astype("string").fillna("")
        self._cache: dict[str, pd.Series] = {}

    def mask(self, group: str) -> pd.Series:
        """Boolean Series: the row's offence is in ``group`` (or any group it includes)."""
        if group not in self._cache:
            self._cache[group] = self._evaluate(group, frozenset())
        return self._cache[group]

    def _evaluate(self, group: str, stack: frozenset[str]) -> pd.Series:
        if group in stack:  # a cycle of includes adds nothing new
            return pd.Series(False, index=self.ho_class.index)
        spec = self.taxonomy.groups[group]
        out = pd.Series(False, index=self.ho_class.index)
        for rule in spec.rules:
            classes = {c.strip().upper().lstrip("0") or "0" for c in rule.ho_classes}
            hit = self.ho_class.isin(classes).fillna(False).astype(bool)
            if rule.description_regex:
                hit &= self.description.str.contains(rule.description_regex, flags=re.IGNORECASE,
                                                     regex=True).fillna(False).astype(bool)
            if rule.description_exclude_regex:
                hit &= ~self.description.str.contains(rule.description_exclude_regex, flags=re.IGNORECASE,
                                                      regex=True).fillna(False).astype(bool)
            out |= hit
        for inc in spec.includes:
            out |= self._evaluate(inc, stack | {group})
        return out

    def first_group(self, groups: list[str]) -> pd.Series:
        """Name of the first of ``groups`` each row falls in (missing if none)."""
        out = pd.Series(pd.NA, index=self.ho_class.index, dtype="string")
        for g in reversed(groups):
            out = out.mask(self.mask(g), g)
        return out
