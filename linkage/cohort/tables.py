"""Researcher tables from the VRN-internal person frame, all passed through disclosure control.

Every count is registered once in a :class:`CellRegistry` (with the additive relations that tie it to
totals and to its complement), protected as a whole, then read back into tables. Tables hold only
group labels, factor names, bands, quarters and NPA names: never ids, hashes or exact dates.
"""

from __future__ import annotations

import secrets
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from linkage.cohort.config import CohortConfig, RiskFactorCatalogue
from linkage.cohort.disclosure import (
    CellRegistry,
    DisclosureLog,
    k_anonymise,
    released_share,
    wilson_interval,
)
from linkage.cohort.selection import band_label, quarter_label, to_band

ALL = "all"
WITHHELD = object()  # placeholder for a suppressed cell until the table is rendered
ETHNIC_GROUPS = {"W": "White", "M": "Mixed", "A": "Asian", "B": "Black", "O": "Other"}
OTHER_AREA = "Other area"
STATUSES = ["ok", "no data", "area attribute", "source not supplied"]
CharKey = tuple[str, int, str]  # (table, row index, column)


@dataclass
class Release:
    """Researcher tables: name -> rows (dicts); WITHHELD marks suppressed cells, None = not applicable."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    log: DisclosureLog = field(default_factory=DisclosureLog)
    # VRN-internal, never written to the release: the true count behind every count cell (for a mean
    # cell, the true sum it divides), so the intruder can say which cells it pins.
    truth: dict[CharKey, int] = field(default_factory=dict)
    keys: dict[CharKey, tuple] = field(default_factory=dict)  # VRN-internal: the registry cell behind a cell
    # The code list each category column's values must come from (checked before anything is written).
    code_lists: dict[str, set[str]] = field(default_factory=dict)
    # Documented properties an intruder is told (see ``cohort.intruder.attack``).
    facts: dict[str, Any] = field(default_factory=dict)


def ethnic_group(codes: pd.Series) -> pd.Series:
    first = codes.astype("string").str.strip().str.upper().str.slice(0, 1)
    return first.map(lambda c: ETHNIC_GROUPS.get(c, "Unknown") if isinstance(c, str) else "Unknown")


def _pct(n: int, den: int) -> float:
    return round(100.0 * n / den, 1)


class TableBuilder:
    """Builds every researcher table of one cohort from the person frame."""

    def __init__(self, persons: pd.DataFrame, cfg: CohortConfig, catalogue: RiskFactorCatalogue,
                 sources: list[str], factor_sources: dict[str, list[str]]) -> None:
        self.p = persons
        self.cfg = cfg
        self.cat = catalogue
        self.sources = sources
        self.factor_sources = factor_sources
        self.s = cfg.disclosure
        self.reg = CellRegistry(cfg.disclosure)
        # Category values come from code lists, never from free text in a payload: an area outside the
        # configured list is shown as 'Other area' (so '=HYPERLINK(...)' can never become a row label).
        for dim in ("ethnic_group", "area", "age_band"):
            if dim in persons:
                persons[dim] = persons[dim].astype("string").fillna("Unknown")
        if "area" in persons:
            known = persons["area"].isin(cfg.disclosure.area_codes) | (persons["area"] == "Unknown")
            persons["area"] = persons["area"].where(known, OTHER_AREA)
        present = set(persons["subgroup"])
        self.subgroups = [g for g in [*cfg.subgroups, "other"] if g in present]
        self.groups = [ALL, *self.subgroups]
        self.labels = {ALL: "Whole cohort", "other": "Other qualifying offences",
                       **{k: v.label for k, v in cfg.subgroups.items()}}

    # --- registration ----------------------------------------------------------------------------
    def members(self, g: str) -> pd.DataFrame:
        return self.p if g == ALL else self.p[self.p["subgroup"] == g]

    def _register_by_group(self, kind: tuple, count_of) -> None:
        """Register ``kind + (group,)`` for every group and tie the whole-cohort cell to its parts."""
        for g in self.groups:
            self.reg.add((*kind, g), count_of(self.members(g)))
        if self.subgroups:
            self.reg.constrain((*kind, ALL), [(*kind, g) for g in self.subgroups])

    def _register_split(self, kind: tuple, total_kind: tuple, mask_of) -> None:
        """Register a count and its hidden complement *within the total it splits* (e.g. "linked to
        social care but without the factor" = linked to social care - with the factor), tied to that total."""
        self._register_by_group(kind, lambda m: int(mask_of(m).sum()))
        not_kind = (f"{kind[0]}_not", *kind[1:])
        for g in self.groups:
            complement = self.reg.values[(*total_kind, g)] - self.reg.values[(*kind, g)]
            self.reg.add((*not_kind, g), complement, hidden=True)
            self.reg.constrain((*total_kind, g), [(*kind, g), (*not_kind, g)])
        if self.subgroups:
            self.reg.constrain((*not_kind, ALL), [(*not_kind, g) for g in self.subgroups])

    def den_kind(self, srcs: list[str]) -> tuple:
        if not srcs or self.cfg.police.source in srcs:
            return ("people",)  # everyone in the cohort is in the police extract
        if len(srcs) == 1:
            return ("linked", srcs[0])
        return ("linked_any", *srcs)

    def linked_mask(self, srcs: list[str]):
        cols = [f"linked_{s}" for s in srcs if f"linked_{s}" in self.p]
        return lambda m: m[cols].any(axis=1) if cols else pd.Series(False, index=m.index)

    def register(self) -> None:
        self._register_by_group(("people",), len)
        self.reg.keep_if_possible |= {("people", g) for g in self.groups}
        for src in self.sources:
            if src != self.cfg.police.source:
                self._register_split(("linked", src), ("people",), self.linked_mask([src]))
        for f in self.cat.factors:
            col = f"rf_{f.id}"
            if col not in self.p:
                continue
            srcs = [s for s in self.factor_sources[f.id] if s in self.sources]
            den = self.den_kind(srcs)
            if den[0] == "linked_any" and (*den, ALL) not in self.reg.values:
                self._register_split(den, ("people",), self.linked_mask(srcs))
            linked = self.linked_mask(srcs)
            self._register_split(("factor", f.id), den, lambda m, c=col, lk=linked: m[c] & lk(m))
        self._register_split(("victim",), ("people",), lambda m: m["prior_victim"])
        self.victim_is_factor = ("rf_previous_victim" in self.p
                                 and self.p["rf_previous_victim"].equals(self.p["prior_victim"]))
        if self.victim_is_factor:
            for g in self.groups:  # the same people: one cell must never be withheld while the other shows
                self.reg.constrain(("victim", g), [("factor", "previous_victim", g)])
        self._register_sums()
        for kind, col, bands in (("count_band", "n_factors", self.cfg.factor_count_bands),
                                 ("prior_band", "prior_offences", self.cfg.prior_offence_bands)):
            labels = [band_label(lo, hi) for lo, hi in bands]
            banded = to_band(self.p[col], bands)
            self.p[f"_{kind}"] = banded
            for lab in labels:
                self._register_by_group((kind, lab), lambda m, c=f"_{kind}", v=lab: int((m[c] == v).sum()))
            for g in self.groups:
                self.reg.constrain(("people", g), [(kind, lab, g) for lab in labels])
        for dim in self.characteristics():
            cats = self.categories(dim)
            for cat in cats:
                in_cat = self.p[dim] == cat
                self.reg.add(("char", dim, cat), int(in_cat.sum()))
                for src in self.sources:
                    if src == self.cfg.police.source:
                        continue
                    n_linked = int((in_cat & self.p[f"linked_{src}"]).sum())
                    self.reg.add(("char_linked", dim, cat, src), n_linked)
                    unlinked = ("char_unlinked", dim, cat, src)
                    if self.known_only_if_linked(dim, cat, src):
                        # Everyone with a known value is linked to the one source it comes from: an
                        # intruder knows this cell is 0, so it is a known cell, never a shield.
                        self.reg.add(unlinked, int(in_cat.sum()) - n_linked)
                        self.reg.never_withhold.add(unlinked)
                    else:
                        self.reg.add(unlinked, int(in_cat.sum()) - n_linked, hidden=True)
                    self.reg.constrain(("char", dim, cat), [("char_linked", dim, cat, src), unlinked])
            self.reg.constrain(("people", ALL), [("char", dim, c) for c in cats])
            for src in self.sources:
                if src != self.cfg.police.source:
                    self.reg.constrain(("linked", src, ALL), [("char_linked", dim, c, src) for c in cats])
                    self.reg.constrain(("linked_not", src, ALL), [("char_unlinked", dim, c, src) for c in cats])

    def _register_sums(self) -> None:
        """The sums behind every mean are counts too (person-factors), released only rounded, and tied to
        the factor counts they add up (a mean x n must not rebuild a withheld factor count)."""
        for col, _ in self.stat_columns():
            if ("sum", col, ALL) not in self.reg.values:
                self._register_by_group(("sum", col), lambda m, c=col: int(m[c].sum()))
        domains = [d for d, dom in self.cat.domains.items() if dom.per_person and f"n_{d}" in self.p]
        for g in self.groups:
            if domains:
                self.reg.constrain(("sum", "n_factors", g), [("sum", f"n_{d}", g) for d in domains])
            for d in domains:
                parts: list[Hashable] = [("factor", f.id, g) for f in self.cat.factors
                                         if f.domain == d and ("factor", f.id, g) in self.reg.values]
                self.reg.constrain(("sum", f"n_{d}", g), parts)

    def stat_columns(self) -> list[tuple[str, str]]:
        """(person-frame column, statistic) pairs of the cohort summary."""
        return [("n_factors", "mean"), ("n_factors", "median"),
                *[(f"n_{d}", "mean") for d, dom in self.cat.domains.items() if dom.per_person and f"n_{d}" in self.p],
                ("prior_offences", "mean"), ("prior_offences", "median")]

    def known_only_if_linked(self, dim: str, cat: str, src: str) -> bool:
        """Is ``dim == cat`` only ever known for people linked to ``src`` (e.g. age from school years)?"""
        if dim != "age_band" or cat == "unknown" or "age_source" not in self.p:
            return False
        sources = set(self.p["age_source"].dropna())
        return sources == {"school_year"} and src == (self.cfg.age.school_year_estimate.source
                                                      if self.cfg.age.school_year_estimate else None)

    def characteristics(self) -> list[str]:
        dims = [d for d in ("ethnic_group", "area", "age_band") if d in self.p]
        # A dimension with nothing known says nothing: leave it out rather than print one 'Unknown' row.
        return [d for d in dims if (~self.p[d].isin(["Unknown", "unknown"])).any()]

    def categories(self, dim: str) -> list[str]:
        return sorted(self.p[dim].unique())

    # --- reading back ----------------------------------------------------------------------------
    def put(self, row: dict[str, Any], column: str, key: tuple) -> None:
        """Show the released value of ``key`` in ``row[column]`` and note its true value (VRN-internal)."""
        self.used.setdefault(self.table, set()).add(key)
        v = self.reg.released(key)
        row[column] = WITHHELD if v is None else v
        self.truth[(self.table, self.row_index, column)] = self.reg.values[key]
        self.keys[(self.table, self.row_index, column)] = key

    def new_row(self, **fields: Any) -> dict[str, Any]:
        self.row_index = len(self.rows)
        self.rows.append(dict(fields))
        return self.rows[-1]

    def share(self, key: tuple, den_key: tuple) -> tuple[Any, Any, Any]:
        """(pct, ci_low, ci_high) from the released counts, or WITHHELD when not shown."""
        if self.s.derive_statistics_from == "true":  # weakened policy (needs risk_accepted)
            n, den = self.reg.values[key], self.reg.values[den_key]
            if self.reg.is_withheld(key) or self.reg.is_withheld(den_key) or den < self.s.stat_min_contributors:
                shown = None
            else:
                lo, hi = wilson_interval(n, den)
                shown = (round(100.0 * n / den, 1), round(100 * lo, 1), round(100 * hi, 1))
        else:
            shown = released_share(self.reg.released(key), self.reg.released(den_key), self.s)
        if shown is None:
            self.pct_withheld[self.table] = self.pct_withheld.get(self.table, 0) + 1
            return WITHHELD, WITHHELD, WITHHELD
        return shown

    def stat(self, row: dict[str, Any], column: str, g: str, source: str, how: str) -> None:
        """A mean (released sum / released people) or median, only where the group has enough people."""
        n_released = self.reg.released(("people", g))
        values = self.members(g)[source]
        if n_released is None or n_released < self.s.stat_min_contributors:
            row[column] = WITHHELD
        elif how == "median":
            row[column] = round(float(values.median()), 1)
        elif self.s.derive_statistics_from == "true":  # weakened policy (needs risk_accepted)
            row[column] = round(float(values.mean()), 1)
        else:
            total = self.reg.released(("sum", source, g))
            row[column] = WITHHELD if total is None else round(total / n_released, 1)
        if how == "mean":
            self.truth[(self.table, self.row_index, column)] = self.reg.values[("sum", source, g)]
            self.keys[(self.table, self.row_index, column)] = ("sum", source, g)
            if row[column] is not WITHHELD:
                self.used.setdefault(self.table, set()).add(("sum", source, g))

    def withhold(self, keys: set[tuple], rule: str = "secondary_intruder") -> None:
        """Withhold more cells (e.g. those an intruder leaned on) and re-protect; ``build`` again after."""
        for key in keys:
            self.reg.withhold(key, rule)
        self.reg.protect()

    def build(self) -> Release:
        """Register and protect every count (once), then render the tables from the released values."""
        if not self.reg.values:
            self.register()
            self.reg.protect()
        rel = Release()
        self.used: dict[str, set] = {}
        self.pct_withheld: dict[str, int] = {}
        self.truth = rel.truth
        self.keys = rel.keys
        builders = {"cohort_summary": self.summary_rows, "factor_prevalence": self.prevalence_rows,
                    "factor_count_distribution": lambda: self.band_rows("count_band", self.cfg.factor_count_bands),
                    "prior_offence_distribution": lambda: self.band_rows("prior_band", self.cfg.prior_offence_bands),
                    "linkage_coverage": self.coverage_rows, "coverage_by_characteristic": self.characteristic_rows}
        for name, make in builders.items():
            self.table: str = name
            self.rows: list[dict[str, Any]] = []
            self.row_index = -1
            make()
            rel.tables[name] = self.rows
            # Each table's log names the rules that touched the counts it shows.
            self.reg.log_to(rel.log, name, self.used.get(name, set()))
            rel.log.add(name, "pct_withheld(count_withheld_or_released_denominator_below_"
                              f"{self.s.stat_min_contributors})", self.pct_withheld.get(name, 0))
        withheld_stats = sum(1 for r in rel.tables["cohort_summary"] for k, v in r.items()
                             if v is WITHHELD and (k.startswith("mean") or k.startswith("median")))
        rel.log.add("cohort_summary", f"stat_withheld(group_or_sum_withheld_or_fewer_than_"
                                      f"{self.s.stat_min_contributors}_people)", withheld_stats)
        if self.cfg.person_level.enabled:
            rel.tables["person_level"] = self.person_rows(rel.log)
        rel.code_lists = self.code_lists()
        age_src = self.cfg.age.school_year_estimate.source if self.cfg.age.school_year_estimate else None
        rel.facts = {"index_source": self.cfg.police.source,
                     "age_band_only_from": (age_src if any(self.known_only_if_linked("age_band", c, age_src or "")
                                                           for c in self.categories("age_band")) else None)
                     if "age_band" in self.p else None,
                     "victim_factor": "previous_victim" if self.victim_is_factor else None}
        return rel

    def code_lists(self) -> dict[str, set[str]]:
        """What each category column may hold: every value comes from the configs, never from a payload."""
        cat = self.cat
        bands = [band_label(lo, hi) for lo, hi in [*self.cfg.factor_count_bands, *self.cfg.prior_offence_bands]]
        config_sources = {self.cfg.police.source, *(i.source for f in cat.factors for i in f.indicators)}
        return {
            "group": set(self.labels), "group_label": set(self.labels.values()),
            "domain": set(cat.domains), "factor": {f.id for f in cat.factors}, "label": {f.label for f in cat.factors},
            "status": set(STATUSES), "band": set(bands),
            "source": config_sources,
            "denominator_sources": {"+".join(sorted(x)) for x in
                                    [[s for s in self.factor_sources.get(f.id, []) if s in self.sources]
                                     for f in cat.factors]} | {""},
            "characteristic": {"ethnic_group", "area", "age_band"},
            "category": ({*ETHNIC_GROUPS.values(), "Unknown", OTHER_AREA, *self.s.area_codes, "unknown"}
                         | {band_label(lo, hi) for lo, hi in self.cfg.age.bands}),
        }

    def band_rows(self, kind: str, bands: list[tuple[int, int]]) -> None:
        for g in self.groups:
            for lo, hi in bands:
                row = self.new_row(group=g, group_label=self.labels[g], band=band_label(lo, hi))
                self.put(row, "people", (kind, band_label(lo, hi), g))

    def summary_rows(self) -> None:
        names = {"n_factors": "factors", "prior_offences": "prior_offences"}
        for g in self.groups:
            row = self.new_row(group=g, group_label=self.labels[g])
            self.put(row, "people", ("people", g))
            for col, how in self.stat_columns():
                self.stat(row, f"{how}_{names.get(col, col[2:] + '_factors')}", g, col, how)
            self.put(row, "previously_victimised", ("victim", g))
            pct, lo, hi = self.share(("victim", g), ("people", g))
            row.update({"pct_previously_victimised": pct, "pct_previously_victimised_ci_low": lo,
                        "pct_previously_victimised_ci_high": hi})

    def prevalence_rows(self) -> None:
        for g in self.groups:
            for f in self.cat.factors:
                dom = self.cat.domains[f.domain]
                row = self.new_row(group=g, group_label=self.labels[g], domain=f.domain, factor=f.id, label=f.label)
                srcs = [s for s in self.factor_sources.get(f.id, []) if s in self.sources]
                if not dom.per_person:
                    status = "area attribute"
                elif not f.indicators:
                    status = "no data"
                elif f"rf_{f.id}" not in self.p or not srcs:
                    status = "source not supplied"
                else:
                    status = "ok"
                row["status"] = status
                if status != "ok":
                    row.update({"people_with_factor": None, "denominator": None, "pct": None,
                                "ci_low": None, "ci_high": None, "denominator_sources": ""})
                    continue
                key, den = ("factor", f.id, g), (*self.den_kind(srcs), g)
                self.put(row, "people_with_factor", key)
                self.put(row, "denominator", den)
                pct, lo, hi = self.share(key, den)
                row.update({"pct": pct, "ci_low": lo, "ci_high": hi, "denominator_sources": "+".join(srcs)})

    def coverage_rows(self) -> None:
        for g in self.groups:
            for src in self.sources:
                key = ("people", g) if src == self.cfg.police.source else ("linked", src, g)
                row = self.new_row(group=g, group_label=self.labels[g], source=src)
                self.put(row, "people", ("people", g))
                self.put(row, "linked", key)
                if src == self.cfg.police.source:
                    pct, lo, hi = None, None, None  # the index source: 100% by construction
                else:
                    pct, lo, hi = self.share(key, ("people", g))
                row.update({"pct_linked": pct, "ci_low": lo, "ci_high": hi})

    def characteristic_rows(self) -> None:
        for dim in self.characteristics():
            for cat in self.categories(dim):
                for src in self.sources:
                    if src == self.cfg.police.source:
                        continue
                    key = ("char_linked", dim, cat, src)
                    row = self.new_row(characteristic=dim, category=cat, source=src)
                    self.put(row, "people", ("char", dim, cat))
                    self.put(row, "linked", key)
                    pct, lo, hi = self.share(key, ("char", dim, cat))
                    row.update({"pct_linked": pct, "ci_low": lo, "ci_high": hi})

    def person_rows(self, log: DisclosureLog) -> list[dict[str, Any]]:
        """Person-level table: random research ids, coarse quasi-identifiers, k-anonymous."""
        p = self.p
        df = pd.DataFrame({
            "subgroup": p["subgroup"].astype("string"),
            "age_band": p["age_band"].astype("string"),
            "ethnic_group": p["ethnic_group"].astype("string"),
            "index_quarter": quarter_label(p["index_day"]),
            "area": p["area"].astype("string").fillna("Unknown"),
        })
        for src in self.sources:
            df[f"linked_{src}"] = p[f"linked_{src}"].astype(int).to_numpy()
        for f in self.cat.factors:
            if f"rf_{f.id}" in p:
                df[f"rf_{f.id}"] = p[f"rf_{f.id}"].astype(int).to_numpy()
        df["n_factors"] = p["n_factors"].to_numpy()
        df["prior_offences_band"] = p["_prior_band"].to_numpy()
        df = k_anonymise(df, self.cfg.person_level.quasi_identifiers, self.cfg.person_level.generalisation,
                         self.s, log, "person_level")
        # Research ids come from the OS CSPRNG and from nothing else, and row order is shuffled, so
        # neither the id nor the position says anything about the person or the VRN's person_id.
        order = list(range(len(df)))
        secrets.SystemRandom().shuffle(order)
        df = df.iloc[order].reset_index(drop=True)
        ids: set[str] = set()
        while len(ids) < len(df):
            ids.add("R" + secrets.token_hex(5))
        df.insert(0, "research_id", sorted(ids, key=lambda _: secrets.randbits(32)))
        return [{str(k): v for k, v in row.items()} for row in df.to_dict(orient="records")]
