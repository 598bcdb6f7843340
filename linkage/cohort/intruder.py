"""The release attacks itself: an integer-programming intruder over every table of one cohort release.

The intruder sees what a researcher sees (the released tables and the documented rules) and nothing
of how the VRN protected them: its model is rebuilt here from the tables and the documentation, not
taken from the :class:`~linkage.cohort.disclosure.CellRegistry`, so a relation the registry forgot
(the complement bug of old, an age band that only education can supply) is still used against it.

Unknowns are the true counts behind every cell (and the sums behind every mean). Constraints:

- each released count lies in its rounding interval, and a released non-zero count is above the
  suppression threshold; a withheld count is only known to be >= 0;
- sub-groups partition the cohort (every additive count of ``all`` is the sum over sub-groups);
  bands partition people; categories of a characteristic partition the cohort and its linked people;
- factor <= its denominator <= people; a multi-source denominator lies between its largest source
  and their sum; previously victimised <= people; linked <= people in every characteristic;
- a characteristic only one source can supply (age from school years) is known only for people
  linked to that source;
- sums behind means: per-domain sums add up the domain's factor counts, the factor-count bands bound
  the total, and each shown mean pins its sum to the documented derivation (released sum / released
  people, or, under a weakened policy, true sum / true people);
- under a weakened policy (statistics from true counts) every shown % is a ratio of true counts.

For every withheld, rounded or hidden quantity (including each complement, e.g. "linked but without the
factor") it computes the feasible integer interval with scipy's HiGHS ``milp``. A quantity whose true
value is sensitive (1–9, the floor, even under a weakened policy) must keep an interval at least as wide
as the rounding base (5, or the configured base if larger).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_array

from linkage.cohort.config import DisclosureSettings
from linkage.errors import LinkageError
from linkage.graph import component_labels

__all__ = ["Cell", "IntruderReport", "ReleaseRefused", "Target", "attack", "attack_cells", "attack_cells_pair",
           "attack_pair", "rounding_interval"]


class ReleaseRefused(LinkageError):
    """The release failed its own intruder check (or the release register); nothing was written."""

    exit_code = 3

_EPS = 1e-6


def rounding_interval(released: int, settings: DisclosureSettings) -> tuple[int, int]:
    """True values a released count can come from (round half up to ``rounding_base``, small ones withheld)."""
    base = settings.rounding_base
    lo = math.ceil(released - base / 2)
    hi = math.ceil(released + base / 2) - 1
    if released == 0:
        # 1..suppress_max would have been withheld; above it, values may still round to 0 (huge bases)
        return (0, 0) if hi <= settings.suppress_max else (0, hi)
    return max(lo, settings.suppress_max + 1, 0), hi


@dataclass
class Target:
    """A quantity the intruder tries to pin: a linear combination of unknowns, with its true value."""

    table: str
    cell: str  # e.g. "group=gbh factor=economic_stress column=people_with_factor"
    kind: str  # withheld | rounded | complement | sum
    coef: dict[str, int]
    truth: int | None
    lo: int | None = None
    hi: int | None = None
    exact_solve: bool = False
    leans_on: list[tuple[str, int, str]] = field(default_factory=list)  # released cells binding its bounds

    @property
    def width(self) -> int | None:
        return None if self.lo is None or self.hi is None else self.hi - self.lo + 1


@dataclass
class IntruderReport:
    """Feasible intervals of every audited quantity, and which of them break the policy."""

    targets: list[Target] = field(default_factory=list)
    seconds: float = 0.0
    variables: int = 0
    constraints: int = 0
    failures: list[Target] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, Any]:
        """Aggregate verdict (safe to give to an output checker; says nothing about single cells)."""
        released = [t for t in self.targets if t.kind == "rounded"]
        audited = [t for t in self.targets if t.width is not None]
        released = [t for t in released if t.width is not None]
        return {"verdict": "pass" if self.passed else "fail", "quantities_audited": len(audited),
                "variables": self.variables, "constraints": self.constraints,
                "released_counts_audited": len(released),
                "released_counts_audited_pinned_exactly": sum(1 for t in released if t.width == 1),
                "quantities_pinned_exactly": sum(1 for t in audited if t.width == 1),
                "failures": len(self.failures), "seconds": round(self.seconds, 2)}

    def log_entries(self) -> list[dict[str, Any]]:
        """Per-quantity intervals for the output checker's disclosure log (VRN-internal, never released)."""
        return [{"table": t.table, "cell": t.cell, "kind": t.kind, "feasible_low": t.lo, "feasible_high": t.hi,
                 "width": t.width, "refused": t in self.failures, "solver": "milp" if t.exact_solve else "lp"}
                for t in self.targets]

    def error_line(self) -> str:
        t = self.failures[0]
        more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        return (f"release refused: an intruder narrows table {t.table}, cell {t.cell} to {t.width} possible "
                f"value(s), fewer than the rounding base{more}; nothing was written")


class _Model:
    """Variables (true counts), linear constraints and bounds, built from named relations."""

    def __init__(self, upper: int) -> None:
        self.index: dict[str, int] = {}
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.rows: list[tuple[dict[int, float], float, float]] = []  # (coef, lower, upper)
        self.upper = upper
        self.truth: dict[str, int] = {}

    def var(self, name: str, hi: float | None = None) -> str:
        if name not in self.index:
            self.index[name] = len(self.lo)
            self.lo.append(0.0)
            self.hi.append(float(self.upper if hi is None else hi))
        return name

    def bound(self, name: str, lo: float, hi: float) -> None:
        i = self.index[self.var(name)]
        self.lo[i] = max(self.lo[i], lo)
        self.hi[i] = min(self.hi[i], hi)

    def add(self, coef: dict[str, float], lo: float, hi: float) -> None:
        row: dict[int, float] = {}
        for name, c in coef.items():
            j = self.index[self.var(name)]
            row[j] = row.get(j, 0.0) + c
        row = {j: c for j, c in row.items() if c}
        if row:
            self.rows.append((row, lo, hi))

    def equal(self, total: str, parts: Iterable[str]) -> None:
        coef: dict[str, float] = {total: 1.0}
        for p in parts:
            coef[p] = coef.get(p, 0.0) - 1.0
        self.add(coef, 0.0, 0.0)

    def leq(self, small: str, big: str) -> None:
        self.add({small: 1.0, big: -1.0}, -math.inf, 0.0)

    def matrices(self):
        n = len(self.lo)
        r, c, v = [], [], []
        for i, (row, _, _) in enumerate(self.rows):
            for j, x in row.items():
                r.append(i)
                c.append(j)
                v.append(x)
        a = coo_array((v, (r, c)), shape=(len(self.rows), n)).tocsr()
        return (a, np.array([x[1] for x in self.rows]), np.array([x[2] for x in self.rows]),
                np.array(self.lo), np.array(self.hi))

    def check_truth(self) -> None:
        """The true values must satisfy the model; if not, the model (not the release) is wrong."""
        if len(self.truth) < len(self.index):
            return  # some unknown has no known truth (e.g. an auxiliary); nothing to check exactly
        x = np.zeros(len(self.lo))
        for name, i in self.index.items():
            x[i] = self.truth[name]
        names = {i: n for n, i in self.index.items()}
        for i, v in enumerate(x):
            if not self.lo[i] - _EPS <= v <= self.hi[i] + _EPS:
                raise RuntimeError(f"intruder model: bound of {names[i]} does not hold on the true values")
        for row, lo, hi in self.rows:
            v = sum(c * x[j] for j, c in row.items())
            if not lo - _EPS <= v <= hi + _EPS:
                raise RuntimeError("intruder model: a relation does not hold on the true values: "
                                   + " ".join(f"{c:+g}*{names[j]}" for j, c in row.items()))


class _View:
    """One release's unknowns inside a (possibly shared) model: names are prefixed per release, so two
    releases can be attacked together (``attack_pair``)."""

    def __init__(self, model: _Model, prefix: str) -> None:
        self.model, self.prefix = model, prefix
        self.truth: dict[str, int] = {}
        self.upper = model.upper

    def var(self, name: str, hi: float | None = None) -> str:
        self.model.var(self.prefix + name, hi)
        return name

    def bound(self, name: str, lo: float, hi: float) -> None:
        self.model.bound(self.prefix + name, lo, hi)

    def add(self, coef: dict[str, float], lo: float, hi: float) -> None:
        self.model.add({self.prefix + k: v for k, v in coef.items()}, lo, hi)

    def equal(self, total: str, parts: Iterable[str]) -> None:
        self.model.equal(self.prefix + total, [self.prefix + p for p in parts])

    def leq(self, small: str, big: str) -> None:
        self.model.leq(self.prefix + small, self.prefix + big)

    @property
    def index(self) -> dict[str, int]:
        n = len(self.prefix)
        return {name[n:]: i for name, i in self.model.index.items() if name.startswith(self.prefix)}

    def publish_truth(self) -> None:
        self.model.truth.update({self.prefix + k: v for k, v in self.truth.items()})


def _band_bounds(label: str) -> tuple[int, int | None]:
    if label.endswith("+"):
        return int(label[:-1]), None
    if "-" in label:
        lo, hi = label.split("-")
        return int(lo), int(hi)
    return int(label), int(label)


class _Builder:
    """Turns released tables into the intruder's model and its audit targets."""

    def __init__(self, tables: dict[str, list[dict[str, Any]]], settings: DisclosureSettings,
                 truth: dict[tuple[str, int, str], int], facts: dict[str, Any], withheld: Any,
                 model: _Model | None = None, prefix: str = "") -> None:
        self.t = tables
        self.s = settings
        self.truth = truth
        self.facts = facts
        self.withheld = withheld
        summary = tables["cohort_summary"]
        self.groups = [r["group"] for r in summary]
        self.subgroups = [g for g in self.groups if g != "all"]
        people_all = next(r["people"] for r in summary if r["group"] == "all")
        # Every count is at most the cohort size; a withheld cohort size is bounded by nothing we know,
        # so fall back to a bound no real cohort of this tool reaches.
        upper = (rounding_interval(people_all, settings)[1] if isinstance(people_all, int) else 10**7)
        self.m = _View(model if model is not None else _Model(upper), prefix)
        self.targets: dict[str, Target] = {}
        self.aux = 0
        self.observed_at: dict[str, tuple[str, int, str]] = {}  # unknown -> the released cell bounding it

    # --- naming: one unknown per quantity, whichever table shows it --------------------------------
    def people(self, g: str) -> str:
        return self.m.var(f"people|{g}")

    def linked(self, src: str, g: str) -> str:
        return self.people(g) if src == self.facts["index_source"] else self.m.var(f"linked|{src}|{g}")

    def denominator(self, srcs: str, g: str) -> str:
        parts = srcs.split("+")
        if self.facts["index_source"] in parts:
            return self.people(g)
        if len(parts) == 1:
            return self.linked(parts[0], g)
        name = self.m.var(f"linked_any|{srcs}|{g}")
        return name

    # --- observations ----------------------------------------------------------------------------
    def observe(self, table: str, i: int, column: str, var: str, row: dict[str, Any], label: str) -> None:
        value = row[column]
        truth = self.truth.get((table, i, column))
        if truth is not None:
            self.m.truth.setdefault(var, truth)
        if value is self.withheld:
            kind = "withheld"
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            lo, hi = rounding_interval(int(value), self.s)
            self.m.bound(var, lo, hi)
            self.observed_at.setdefault(var, (table, i, column))
            kind = "rounded"
        else:
            return
        key = var
        if key not in self.targets or (self.targets[key].kind == "rounded" and kind == "withheld"):
            self.targets[key] = Target(table, f"{label} column={column}", kind, {var: 1}, truth)

    def complement(self, table: str, label: str, total: str, part: str) -> None:
        key = f"{total} - {part}"
        if key in self.targets or total == part:
            return
        t_total, t_part = self.m.truth.get(total), self.m.truth.get(part)
        truth = None if t_total is None or t_part is None else t_total - t_part
        self.targets[key] = Target(table, f"{label} (complement: {total.split('|')[0]} without it)",
                                   "complement", {total: 1, part: -1}, truth)

    # --- tables ----------------------------------------------------------------------------------
    def build(self) -> None:
        self.summary()
        self.prevalence()
        self.bands()
        self.coverage()
        self.characteristics()
        self.partitions()

    def summary(self) -> None:
        for i, row in enumerate(self.t["cohort_summary"]):
            g = row["group"]
            label = f"group={g}"
            p, v = self.people(g), self.m.var(f"victim|{g}")
            self.observe("cohort_summary", i, "people", p, row, label)
            self.observe("cohort_summary", i, "previously_victimised", v, row, label)
            self.m.leq(v, p)
            self.complement("cohort_summary", label + " previously_victimised", p, v)
            self.percentage(row, "pct_previously_victimised", v, p)
            for column, value in row.items():
                if not column.startswith("mean_"):
                    continue
                source = self.mean_source(column)
                s = self.m.var(f"sum|{source}|{g}", hi=self.m.upper * 10**4)
                truth = self.truth.get(("cohort_summary", i, column))
                if truth is not None:
                    self.m.truth.setdefault(s, truth)
                self.mean(value, s, p, row["people"], ("cohort_summary", i, column))
                if source != "prior_offences":
                    self.targets.setdefault(s, Target("cohort_summary", f"{label} column={column} (sum)", "sum",
                                                      {s: 1}, truth))

    def mean_source(self, column: str) -> str:
        name = column[len("mean_"):]
        if name == "factors":
            return "n_factors"
        if name == "prior_offences":
            return "prior_offences"
        return "n_" + name[: -len("_factors")]

    def mean(self, value: Any, s: str, p: str, people_released: Any, cell: tuple[str, int, str]) -> None:
        if value is self.withheld or value is None:
            return
        m = float(value)
        self.observed_at.setdefault(s, cell)
        if self.s.derive_statistics_from == "true":  # sum = mean x true people, mean rounded to 0.1
            self.m.add({s: 1.0, p: -(m - 0.05 - _EPS)}, 0.0, math.inf)
            self.m.add({s: 1.0, p: -(m + 0.05 + _EPS)}, -math.inf, 0.0)
            return
        # released sum S (a multiple of the base) = mean x released people, rounded to 0.1
        n = float(people_released)
        base = self.s.rounding_base
        k = self.m.var(f"aux|{self.aux}", hi=self.m.upper * 10**4)
        self.observed_at[k] = cell
        self.aux += 1
        k_lo, k_hi = math.ceil((m - 0.05) * n / base - _EPS), math.floor((m + 0.05) * n / base + _EPS)
        self.m.bound(k, k_lo, k_hi)
        truth_s = self.m.truth.get(s)
        if truth_s is not None:
            self.m.truth[k] = math.floor(truth_s / base + 0.5)
        half_lo, half_hi = math.ceil(-base / 2), math.ceil(base / 2) - 1
        self.m.add({s: 1.0, k: -float(base)}, half_lo, half_hi)

    def percentage(self, row: dict[str, Any], column: str, num: str, den: str) -> None:
        value = row.get(column)
        if self.s.derive_statistics_from != "true" or value is None or value is self.withheld:
            return  # from released counts: says nothing the counts beside it do not
        pct = float(value)
        self.m.add({num: 100.0, den: -(pct - 0.05 - _EPS)}, 0.0, math.inf)
        self.m.add({num: 100.0, den: -(pct + 0.05 + _EPS)}, -math.inf, 0.0)

    def prevalence(self) -> None:
        self.domain_factors: dict[tuple[str, str], list[str]] = {}
        for i, row in enumerate(self.t["factor_prevalence"]):
            if row["status"] != "ok":
                continue
            g, f = row["group"], row["factor"]
            label = f"group={g} factor={f}"
            fv = self.m.var(f"factor|{f}|{g}")
            den = self.denominator(row["denominator_sources"], g)
            self.observe("factor_prevalence", i, "people_with_factor", fv, row, label)
            self.observe("factor_prevalence", i, "denominator", den, row, label)
            self.m.leq(fv, den)
            self.m.leq(den, self.people(g))
            srcs = row["denominator_sources"].split("+")
            if len(srcs) > 1 and self.facts["index_source"] not in srcs:
                for s in srcs:
                    self.m.leq(self.linked(s, g), den)
                self.m.add({den: 1.0, **{self.linked(s, g): -1.0 for s in srcs}}, -math.inf, 0.0)
            self.complement("factor_prevalence", label, den, fv)
            self.percentage(row, "pct", fv, den)
            self.domain_factors.setdefault((row["domain"], g), []).append(fv)
            if f == self.facts.get("victim_factor"):
                self.m.equal(fv, [self.m.var(f"victim|{g}")])

    def bands(self) -> None:
        self.band_vars: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for table in ("factor_count_distribution", "prior_offence_distribution"):
            for i, row in enumerate(self.t[table]):
                g = row["group"]
                v = self.m.var(f"band|{table}|{row['band']}|{g}")
                self.observe(table, i, "people", v, row, f"group={g} band={row['band']}")
                self.band_vars.setdefault((table, g), []).append((row["band"], v))
        for (_table, g), parts in self.band_vars.items():
            self.m.equal(self.people(g), [v for _, v in parts])

    def coverage(self) -> None:
        for i, row in enumerate(self.t["linkage_coverage"]):
            g, src = row["group"], row["source"]
            label = f"group={g} source={src}"
            self.observe("linkage_coverage", i, "people", self.people(g), row, label)
            lv = self.linked(src, g)
            self.observe("linkage_coverage", i, "linked", lv, row, label)
            self.m.leq(lv, self.people(g))
            self.complement("linkage_coverage", label, self.people(g), lv)
            self.percentage(row, "pct_linked", lv, self.people(g))

    def characteristics(self) -> None:
        by_dim: dict[str, set[str]] = {}
        by_dim_src: dict[tuple[str, str], list[str]] = {}
        only_from = self.facts.get("age_band_only_from")
        for i, row in enumerate(self.t["coverage_by_characteristic"]):
            dim, cat, src = row["characteristic"], row["category"], row["source"]
            label = f"characteristic={dim} category={cat} source={src}"
            cp = self.m.var(f"char|{dim}|{cat}")
            cl = self.m.var(f"char_linked|{dim}|{cat}|{src}")
            self.observe("coverage_by_characteristic", i, "people", cp, row, label)
            self.observe("coverage_by_characteristic", i, "linked", cl, row, label)
            self.m.leq(cl, cp)
            self.complement("coverage_by_characteristic", label, cp, cl)
            self.percentage(row, "pct_linked", cl, cp)
            by_dim.setdefault(dim, set()).add(cp)
            by_dim_src.setdefault((dim, src), []).append(cl)
            if dim == "age_band" and src == only_from and cat != "unknown":
                self.m.equal(cp, [cl])  # an age band is only known from this source's records
        for cps in by_dim.values():
            self.m.equal(self.people("all"), sorted(cps))
        for (_dim, src), cls in by_dim_src.items():
            self.m.equal(self.linked(src, "all"), cls)

    def partitions(self) -> None:
        if not self.subgroups:
            return
        families: dict[str, dict[str, str]] = {}
        for name in list(self.m.index):
            head, _, g = name.rpartition("|")
            if head and not name.startswith(("char", "aux")) and g in self.groups:
                families.setdefault(head, {})[g] = name
        for members in families.values():
            if "all" in members and all(g in members for g in self.subgroups):
                self.m.equal(members["all"], [members[g] for g in self.subgroups])
        for g in self.groups:  # sums behind the means
            dom_sums = []
            for (domain, gg), fvars in self.domain_factors.items():
                if gg != g:
                    continue
                s = f"sum|n_{domain}|{g}"
                if s in self.m.index:
                    self.m.equal(s, fvars)
                    dom_sums.append(s)
            total = f"sum|n_factors|{g}"
            if total in self.m.index:
                if dom_sums:
                    self.m.equal(total, dom_sums)
                n_ok = sum(len(v) for (_, gg), v in self.domain_factors.items() if gg == g)
                self.m.add({total: 1.0, self.people(g): -float(n_ok)}, -math.inf, 0.0)
                self.band_bounds(total, "factor_count_distribution", g, n_ok)
            prior = f"sum|prior_offences|{g}"
            if prior in self.m.index:
                self.band_bounds(prior, "prior_offence_distribution", g, None)

    def band_bounds(self, total: str, table: str, g: str, cap: int | None) -> None:
        parts = self.band_vars.get((table, g), [])
        if not parts:
            return
        low = {v: -float(_band_bounds(b)[0]) for b, v in parts}
        self.m.add({total: 1.0, **low}, 0.0, math.inf)
        highs = {}
        for b, v in parts:
            hi = _band_bounds(b)[1]
            hi = cap if hi is None else hi
            if hi is None:
                return
            highs[v] = -float(hi)
        self.m.add({total: 1.0, **highs}, -math.inf, 0.0)


def attack(tables: dict[str, list[dict[str, Any]]], settings: DisclosureSettings,
           truth: dict[tuple[str, int, str], int], facts: dict[str, Any], withheld: Any, *,
           exact: bool = False, audit_all: bool = False, time_limit: float = 20.0) -> IntruderReport:
    """Attack one release. ``truth`` maps (table, row, column) to the true count (for a mean, its sum).

    ``facts`` are documented properties of the release an intruder is told: ``index_source`` (everyone is
    in it), ``age_band_only_from`` (the source age bands come from, if only one), ``victim_factor`` (a
    factor defined exactly as "previously victimised"). Quantities whose true value is sensitive are
    solved as integer programs (when the LP relaxation's optimum is not already integral); the rest are
    only attacked with ``audit_all`` (by the LP relaxation, or integer programs too with ``exact``): the
    refusal rule concerns sensitive quantities only, and skipping the others keeps a release fast.
    """
    t0 = time.perf_counter()
    b = _Builder(tables, settings, truth, facts, withheld)
    b.build()
    b.m.publish_truth()
    report = _solve(b.m.model, list(b.targets.values()), dict(b.observed_at), settings,
                    exact=exact, audit_all=audit_all, time_limit=time_limit)
    report.seconds = time.perf_counter() - t0
    return report


def attack_pair(now: dict[str, Any], then: dict[str, Any], settings: DisclosureSettings,
                drift: dict[str, int], withheld: Any, *, time_limit: float = 20.0) -> IntruderReport:
    """Attack a release together with an earlier one (from the release register).

    ``now`` and ``then`` hold ``tables``, ``truth``, ``facts`` and ``settings`` of each release; ``drift``
    maps each population (``people|<group>``, ``char|<dim>|<category>``) to the number of people who
    entered or left it between the two (the intruder is assumed to know it). Every count shown by both
    can move by at most its population's drift. Audited: the current release's sensitive quantities,
    and every difference between the two releases whose true size is sensitive.
    """
    t0 = time.perf_counter()
    model = _Model(10**7)
    bn = _Builder(now["tables"], now["settings"], now["truth"], now["facts"], withheld, model, "now:")
    bt = _Builder(then["tables"], then["settings"], then["truth"], then["facts"], withheld, model, "then:")
    bn.build()
    bt.build()
    bn.m.publish_truth()
    bt.m.publish_truth()
    groups = set(bn.groups) | set(bt.groups)
    targets = [Target(t.table, t.cell, t.kind, {"now:" + k: v for k, v in t.coef.items()}, t.truth)
               for t in bn.targets.values()]
    shared = sorted(set(bn.m.index) & set(bt.m.index))
    for name in shared:
        if name.startswith(("aux|", "sum|")):
            continue  # sums can move by more than one per person; leaving them unlinked only weakens the intruder
        parts = name.split("|")
        population = (f"people|{parts[-1]}" if parts[-1] in groups else
                      f"char|{parts[1]}|{parts[2]}" if parts[0].startswith("char") else "people|all")
        d = drift.get(population, drift.get("people|all", 10**7))
        model.add({"now:" + name: 1.0, "then:" + name: -1.0}, -d, d)
        t_now, t_then = model.truth.get("now:" + name), model.truth.get("then:" + name)
        if t_now is not None and t_then is not None:
            targets.append(Target("(difference of two releases)", f"{name} (now - then)", "difference",
                                  {"now:" + name: 1, "then:" + name: -1}, t_now - t_then))
    observed = {"now:" + k: v for k, v in bn.observed_at.items()}
    report = _solve(model, targets, observed, settings, exact=False, audit_all=False, time_limit=time_limit)
    report.seconds = time.perf_counter() - t0
    return report


def _solve(model: _Model, targets: list[Target], observed_at: dict[str, tuple[str, int, str]],
           settings: DisclosureSettings, *, exact: bool, audit_all: bool, time_limit: float) -> IntruderReport:
    """Feasible interval of every target over ``model`` (see ``attack``)."""
    model.check_truth()
    a, rlo, rhi, lo, hi = model.matrices()
    n = len(lo)
    cons = [LinearConstraint(a, rlo, rhi)] if a.shape[0] else []
    bounds = Bounds(lo, hi)
    integrality = np.ones(n)
    report = IntruderReport(variables=n, constraints=a.shape[0])
    base = settings.intruder_min_width()
    lp_rows = _lp_constraints(a, rlo, rhi)
    lp_bounds = np.column_stack([lo, hi])
    for target in targets:
        c = np.zeros(n)
        for name, coef in target.coef.items():
            c[model.index[name]] = coef
        sensitive = target.truth is not None and settings.intruder_sensitive(abs(target.truth))
        if not (sensitive or audit_all):
            report.targets.append(target)
            continue
        def solve(sign: float, integer: bool, t: Target = target, c: np.ndarray = c) -> float:
            if integer:
                t.exact_solve = True
                res = milp(sign * c, constraints=cons, bounds=bounds, integrality=integrality,
                           options={"time_limit": time_limit, "presolve": True})
                if res.x is None:
                    raise RuntimeError(f"intruder: no solution for {t.table} {t.cell} ({res.message})")
                # On a time limit the dual bound is a valid outer bound: the interval can only be wider.
                return sign * (res.fun if res.status == 0 else getattr(res, "mip_dual_bound", res.fun))
            res = linprog(sign * c, bounds=lp_bounds, method="highs", **lp_rows)
            if res.status != 0:
                raise RuntimeError(f"intruder: LP failed for {t.table} {t.cell} ({res.message})")
            return sign * res.fun

        if sensitive and not exact:
            # The truth is one feasible integer point, so once the integer maximum lies base - 1 above it
            # the interval is wide enough; the minimum is then only needed for the log (LP outer bound).
            top = solve(-1.0, True)
            low_integer = top - (target.truth or 0) < base - 1
            ends = [solve(1.0, low_integer), top]
        else:
            ends = [solve(1.0, exact), solve(-1.0, exact)]
        target.lo = math.ceil(ends[0] - _EPS)
        target.hi = math.floor(ends[1] + _EPS)
        report.targets.append(target)
        if sensitive and target.width is not None and target.width < base:
            report.failures.append(target)
    names = {i: name for name, i in model.index.items()}
    for target in report.failures:
        c = np.zeros(n)
        for name, coef in target.coef.items():
            c[model.index[name]] = coef
        for sign in (1.0, -1.0):
            res = linprog(sign * c, bounds=lp_bounds, method="highs", **lp_rows)
            if res.status != 0:
                continue
            binding = np.flatnonzero((np.abs(res.lower.marginals) > 1e-9) | (np.abs(res.upper.marginals) > 1e-9))
            for j in binding:
                cell = observed_at.get(names[int(j)])
                if cell is not None and cell not in target.leans_on:
                    target.leans_on.append(cell)
    return report


def _lp_constraints(a, rlo, rhi) -> dict[str, Any]:
    """linprog wants A_ub x <= b_ub and A_eq x = b_eq."""
    if a.shape[0] == 0:
        return {}
    eq = np.isclose(rlo, rhi)
    out: dict[str, Any] = {}
    if eq.any():
        out["A_eq"], out["b_eq"] = a[eq], rlo[eq]
    ub_rows, ub_vals = [], []
    upper = ~eq & np.isfinite(rhi)
    lower = ~eq & np.isfinite(rlo)
    if upper.any():
        ub_rows.append(a[upper])
        ub_vals.append(rhi[upper])
    if lower.any():
        ub_rows.append(-a[lower])
        ub_vals.append(-rlo[lower])
    if ub_rows:
        from scipy.sparse import vstack

        out["A_ub"], out["b_ub"] = vstack(ub_rows).tocsr(), np.concatenate(ub_vals)
    return out


# --- releases given as cells and additive relations (the SNA profile) ---------------------------------

@dataclass
class Cell:
    """One quantity of a release described cell by cell: its released value (None when withheld or
    never shown) and the true value the VRN knows."""

    name: str
    table: str
    released: int | None
    truth: int
    hidden: bool = False  # never shown (e.g. "occurrences without the flag"), but bound by the relations


def _attack_rows(cells: dict[str, Cell], rows: list[tuple[dict[str, float], float, float]], targets: list[Target],
                 settings: DisclosureSettings, time_limit: float) -> IntruderReport:
    """Solve every target inside its own connected block of unknowns (the blocks are independent, and
    small integer programs are far faster than one large one)."""
    # a row's cells are all tied to its first one: the blocks are the components of those edges
    comp = component_labels(list(cells), ((keys[0], k) for r in rows for keys in [list(r[0])] for k in keys[1:]))
    by_comp_rows: dict[int, list] = {}
    for r in rows:
        by_comp_rows.setdefault(comp[next(iter(r[0]))], []).append(r)
    by_comp_targets: dict[int, list[Target]] = {}
    for t in targets:
        by_comp_targets.setdefault(comp[next(iter(t.coef))], []).append(t)
    report = IntruderReport()
    for c, tgts in by_comp_targets.items():
        if not any(t.truth is not None and settings.intruder_sensitive(abs(t.truth)) for t in tgts):
            report.targets.extend(tgts)  # nothing sensitive to narrow in this block
            continue
        model = _Model(10**7)
        members = [n for n in cells if comp[n] == c]
        observed: dict[str, tuple[str, int, str]] = {}
        for n in members:
            cell = cells[n]
            model.var(n)
            model.truth[n] = cell.truth
            if cell.released is not None and not cell.hidden:
                model.bound(n, *rounding_interval(cell.released, settings))
                observed[n] = (cell.table, 0, n)
        for coef, lo, hi in by_comp_rows.get(c, []):
            model.add(coef, lo, hi)
        part = _solve(model, tgts, observed, settings, exact=False, audit_all=False, time_limit=time_limit)
        report.targets.extend(part.targets)
        report.failures.extend(part.failures)
        report.variables += part.variables
        report.constraints += part.constraints
    return report


def _cell_targets(cells: dict[str, Cell], prefix: str = "") -> list[Target]:
    out = []
    for n, cell in cells.items():
        kind = "complement" if cell.hidden else "withheld" if cell.released is None else "rounded"
        out.append(Target(cell.table, n.removeprefix(prefix), kind, {n: 1}, cell.truth))
    return out


def attack_cells(cells: list[Cell], relations: list[tuple[str, list[str]]], settings: DisclosureSettings, *,
                 time_limit: float = 20.0) -> IntruderReport:
    """Attack a release given cell by cell with the additive relations an intruder knows (``total`` =
    sum of ``parts``, by cell name): every released count lies in its rounding interval, and every
    withheld or hidden count whose true value is sensitive must keep at least the rounding base of
    feasible values (integer programs, as in :func:`attack`)."""
    t0 = time.perf_counter()
    by_name = {c.name: c for c in cells}
    rows = []
    for total, parts in relations:
        coef: dict[str, float] = {total: 1.0}
        for p in parts:
            coef[p] = coef.get(p, 0.0) - 1.0
        coef = {k: v for k, v in coef.items() if v}
        if coef:
            rows.append((coef, 0.0, 0.0))
    report = _attack_rows(by_name, rows, _cell_targets(by_name), settings, time_limit)
    report.seconds = time.perf_counter() - t0
    return report


def attack_cells_pair(now: tuple[list[Cell], list[tuple[str, list[str]]]],
                      then: tuple[list[Cell], list[tuple[str, list[str]]]], linked: dict[str, int],
                      settings: DisclosureSettings, *, time_limit: float = 20.0) -> IntruderReport:
    """Attack a cell-wise release together with an earlier one: a cell ``name`` shown by both may move by
    at most ``linked[name]`` (the number of members that entered or left its population; cells not in
    ``linked`` are left unlinked). Audited: the new release's sensitive quantities and every sensitive
    difference between the two releases."""
    t0 = time.perf_counter()
    cells: dict[str, Cell] = {}
    rows: list[tuple[dict[str, float], float, float]] = []
    for prefix, (cs, rels) in (("now:", now), ("then:", then)):
        for c in cs:
            cells[prefix + c.name] = Cell(prefix + c.name, c.table, c.released, c.truth, c.hidden)
        for total, parts in rels:
            coef: dict[str, float] = {prefix + total: 1.0}
            for p in parts:
                coef[prefix + p] = coef.get(prefix + p, 0.0) - 1.0
            rows.append((coef, 0.0, 0.0))
    targets = _cell_targets({k: v for k, v in cells.items() if k.startswith("now:")}, "now:")
    for name, drift in linked.items():
        a, b = "now:" + name, "then:" + name
        if a in cells and b in cells:
            rows.append(({a: 1.0, b: -1.0}, -float(drift), float(drift)))
            targets.append(Target("(difference of two releases)", f"{name} (now - then)", "difference",
                                  {a: 1, b: -1}, cells[a].truth - cells[b].truth))
    report = _attack_rows(cells, rows, targets, settings, time_limit)
    report.seconds = time.perf_counter() - t0
    return report
