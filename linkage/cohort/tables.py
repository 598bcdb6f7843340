"""Researcher tables from the VRN-internal person frame, all passed through disclosure control.

Every count is registered once in a :class:`CellRegistry` (with the additive relations that tie it to
totals and to its complement), protected as a whole, then read back into tables. Tables hold only
group labels, factor names, bands, quarters and NPA names: never ids, hashes or exact dates.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from linkage.cohort.config import CohortConfig, RiskFactorCatalogue
from linkage.cohort.disclosure import (
    CellRegistry,
    DisclosureLog,
    k_anonymise,
    percentage_allowed,
    stat_allowed,
    wilson_interval,
)
from linkage.cohort.selection import band_label, quarter_label, to_band

ALL = "all"
WITHHELD = object()  # placeholder for a suppressed cell until the table is rendered
ETHNIC_GROUPS = {"W": "White", "M": "Mixed", "A": "Asian", "B": "Black", "O": "Other"}


@dataclass
class Release:
    """Researcher tables: name -> rows (dicts); WITHHELD marks suppressed cells, None = not applicable."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    log: DisclosureLog = field(default_factory=DisclosureLog)


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
        """Register a count and its hidden complement, each tied to the total they split."""
        self._register_by_group(kind, lambda m: int(mask_of(m).sum()))
        not_kind = (f"{kind[0]}_not", *kind[1:])
        for g in self.groups:
            self.reg.add((*not_kind, g), int((~mask_of(self.members(g))).sum()), hidden=True)
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
        if "rf_previous_victim" in self.p and self.p["rf_previous_victim"].equals(self.p["prior_victim"]):
            for g in self.groups:  # the same people: one cell must never be withheld while the other shows
                self.reg.constrain(("victim", g), [("factor", "previous_victim", g)])
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
            cats = sorted(self.p[dim].astype("string").fillna("Unknown").unique())
            for cat in cats:
                in_cat = self.p[dim].astype("string").fillna("Unknown") == cat
                self.reg.add(("char", dim, cat), int(in_cat.sum()))
                for src in self.sources:
                    if src == self.cfg.police.source:
                        continue
                    n_linked = int((in_cat & self.p[f"linked_{src}"]).sum())
                    self.reg.add(("char_linked", dim, cat, src), n_linked)
                    self.reg.add(("char_unlinked", dim, cat, src), int(in_cat.sum()) - n_linked, hidden=True)
                    self.reg.constrain(("char", dim, cat), [("char_linked", dim, cat, src),
                                                            ("char_unlinked", dim, cat, src)])
            self.reg.constrain(("people", ALL), [("char", dim, c) for c in cats])
            for src in self.sources:
                if src != self.cfg.police.source:
                    self.reg.constrain(("linked", src, ALL), [("char_linked", dim, c, src) for c in cats])
                    self.reg.constrain(("linked_not", src, ALL), [("char_unlinked", dim, c, src) for c in cats])

    def characteristics(self) -> list[str]:
        dims = [d for d in ("ethnic_group", "area", "age_band") if d in self.p]
        # A dimension with nothing known says nothing: leave it out rather than print one 'Unknown' row.
        return [d for d in dims if (self.p[d].astype("string").fillna("Unknown") != "Unknown").any()]

    # --- reading back ----------------------------------------------------------------------------
    def count(self, key: tuple) -> Any:
        self.used.setdefault(self.table, set()).add(key)
        v = self.reg.released(key)
        return WITHHELD if v is None else v

    def share(self, key: tuple, den_key: tuple) -> tuple[Any, Any, Any]:
        """(pct, ci_low, ci_high) or WITHHELD when any disclosure rule forbids it."""
        n, den = self.reg.values[key], self.reg.values[den_key]
        if self.reg.is_withheld(key) or self.reg.is_withheld(den_key) or not percentage_allowed(n, den, self.s):
            self.pct_withheld[self.table] = self.pct_withheld.get(self.table, 0) + 1
            return WITHHELD, WITHHELD, WITHHELD
        lo, hi = wilson_interval(n, den)
        return _pct(n, den), round(100 * lo, 1), round(100 * hi, 1)

    def stat(self, g: str, values: pd.Series, how: str) -> Any:
        if self.reg.is_withheld(("people", g)) or not stat_allowed(len(values), self.s):
            return WITHHELD
        return round(float(values.mean() if how == "mean" else values.median()), 1)

    def _stats_by_group(self, column: str, how: str) -> dict[str, Any]:
        out = {g: self.stat(g, self.members(g)[column], how) for g in self.groups}
        # If the cohort figure shows and exactly one sub-group's is withheld, the rest would give it away.
        hidden = [g for g in self.subgroups if out[g] is WITHHELD]
        if out[ALL] is not WITHHELD and len(hidden) == 1 and len(self.subgroups) > 1:
            shown = sorted((g for g in self.subgroups if out[g] is not WITHHELD), key=lambda g: len(self.members(g)))
            out[shown[0]] = WITHHELD
            self.stat_secondary += 1
        return out

    def build(self) -> Release:
        self.register()
        self.reg.protect()
        rel = Release()
        self.used: dict[str, set] = {}
        self.pct_withheld: dict[str, int] = {}
        self.stat_secondary = 0
        builders = {"cohort_summary": self.summary_rows, "factor_prevalence": self.prevalence_rows,
                    "factor_count_distribution": lambda: self.band_rows("count_band", self.cfg.factor_count_bands),
                    "prior_offence_distribution": lambda: self.band_rows("prior_band", self.cfg.prior_offence_bands),
                    "linkage_coverage": self.coverage_rows, "coverage_by_characteristic": self.characteristic_rows}
        for name, make in builders.items():
            self.table = name
            rel.tables[name] = make()
            # Each table's log names the rules that touched the counts it shows.
            self.reg.log_to(rel.log, name, self.used.get(name, set()))
            rel.log.add(name, f"pct_withheld(numerator_or_complement_below_{self.s.pct_min}_or_count_withheld)",
                        self.pct_withheld.get(name, 0))
        withheld_stats = sum(1 for r in rel.tables["cohort_summary"] for k, v in r.items()
                             if v is WITHHELD and (k.startswith("mean") or k.startswith("median")))
        rel.log.add("cohort_summary", f"stat_withheld(fewer_than_{self.s.stat_min_contributors}_contributors)",
                    withheld_stats - self.stat_secondary)
        rel.log.add("cohort_summary", "stat_withheld(secondary)", self.stat_secondary)
        if self.cfg.person_level.enabled:
            rel.tables["person_level"] = self.person_rows(rel.log)
        return rel

    def band_rows(self, kind: str, bands: list[tuple[int, int]]) -> list[dict[str, Any]]:
        return [{"group": g, "group_label": self.labels[g], "band": band_label(lo, hi),
                 "people": self.count((kind, band_label(lo, hi), g))} for g in self.groups for lo, hi in bands]

    def summary_rows(self) -> list[dict[str, Any]]:
        stats = {(c, how): self._stats_by_group(c, how)
                 for c, how in [("n_factors", "mean"), ("n_factors", "median"),
                                *[(f"n_{d}", "mean") for d, dom in self.cat.domains.items()
                                  if dom.per_person and f"n_{d}" in self.p],
                                ("prior_offences", "mean"), ("prior_offences", "median")]}
        rows = []
        for g in self.groups:
            pct, lo, hi = self.share(("victim", g), ("people", g))
            row = {"group": g, "group_label": self.labels[g], "people": self.count(("people", g))}
            for (c, how), by_group in stats.items():
                name = {"n_factors": "factors", "prior_offences": "prior_offences"}.get(c, c[2:] + "_factors")
                row[f"{how}_{name}"] = by_group[g]
            row.update({"previously_victimised": self.count(("victim", g)), "pct_previously_victimised": pct,
                        "pct_previously_victimised_ci_low": lo, "pct_previously_victimised_ci_high": hi})
            rows.append(row)
        return rows

    def prevalence_rows(self) -> list[dict[str, Any]]:
        rows = []
        for g in self.groups:
            for f in self.cat.factors:
                dom = self.cat.domains[f.domain]
                row: dict[str, Any] = {"group": g, "group_label": self.labels[g], "domain": f.domain,
                                       "factor": f.id, "label": f.label}
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
                else:
                    key, den = ("factor", f.id, g), (*self.den_kind(srcs), g)
                    pct, lo, hi = self.share(key, den)
                    row.update({"people_with_factor": self.count(key), "denominator": self.count(den),
                                "pct": pct, "ci_low": lo, "ci_high": hi,
                                "denominator_sources": "+".join(srcs)})
                rows.append(row)
        return rows

    def coverage_rows(self) -> list[dict[str, Any]]:
        rows = []
        for g in self.groups:
            for src in self.sources:
                key = ("people", g) if src == self.cfg.police.source else ("linked", src, g)
                pct, lo, hi = self.share(key, ("people", g))
                if src == self.cfg.police.source:
                    pct, lo, hi = None, None, None  # the index source: 100% by construction
                rows.append({"group": g, "group_label": self.labels[g], "source": src,
                             "people": self.count(("people", g)), "linked": self.count(key),
                             "pct_linked": pct, "ci_low": lo, "ci_high": hi})
        return rows

    def characteristic_rows(self) -> list[dict[str, Any]]:
        rows = []
        for dim in self.characteristics():
            cats = sorted(self.p[dim].astype("string").fillna("Unknown").unique())
            for cat in cats:
                for src in self.sources:
                    if src == self.cfg.police.source:
                        continue
                    key = ("char_linked", dim, cat, src)
                    pct, lo, hi = self.share(key, ("char", dim, cat))
                    rows.append({"characteristic": dim, "category": cat, "source": src,
                                 "people": self.count(("char", dim, cat)), "linked": self.count(key),
                                 "pct_linked": pct, "ci_low": lo, "ci_high": hi})
        return rows

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
        return df.to_dict(orient="records")
