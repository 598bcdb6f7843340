"""Typed results of the public API: what each step wrote, with DataFrame accessors for notebooks.

Each result names the folder a step wrote and holds the step's manifest or summary; the accessors read
the step's own output files on demand (nothing large is kept in memory). ``_repr_html_`` gives a short
table in Jupyter. ``result["key"]`` still reads the underlying dict, so code written against the earlier
dict returns keeps working.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.1f}"
    return str(value)


def _html_card(title: str, rows: Mapping[str, Any], note: str = "") -> str:
    body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:right'>"
                   f"{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items())
    extra = f"<p style='color:#555'>{html.escape(note)}</p>" if note else ""
    return f"<div><strong>{html.escape(title)}</strong><table>{body}</table>{extra}</div>"


class _DictResult:
    """Mapping-style access to the raw dict, for code written against the earlier dict returns."""

    def _raw(self) -> dict[str, Any]:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self._raw()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._raw().get(key, default)

    def as_dict(self) -> dict[str, Any]:
        """The step's manifest or summary as a JSON-ready dict."""
        return dict(self._raw())


@dataclass(frozen=True)
class EncodedExtract(_DictResult):
    """A partner's identifier package (``linkage hash``): tokens for the linkage unit; the attribute package
    (encrypted to the analysis environment) sits beside it when an analysis public key was given."""

    folder: Path
    manifest: dict[str, Any] = field(repr=False)

    def _raw(self) -> dict[str, Any]:
        return self.manifest

    @property
    def source(self) -> str:
        return str(self.manifest["source"])

    @property
    def counts(self) -> dict[str, Any]:
        return dict(self.manifest["counts"])

    def tokens(self) -> pd.DataFrame:
        """Keyed tokens and Bloom filters, one row per distinct identifier set (what the VRN receives)."""
        return pd.read_parquet(self.folder / "tokens.parquet")

    @property
    def attribute_package(self) -> Path | None:
        """The attribute package folder (sealed to the analysis key), or ``None`` when none was written."""
        package = self.manifest.get("attribute_package")
        return Path(package["path"]) if package else None

    @property
    def release_audit(self) -> dict[str, Any] | None:
        """The release-audit record of the manifest (``status`` "passed" or "not audited", worst-case ``risk``,
        ``max_risk``, ``strongest_attack``), which the linkage unit checks; ``None`` if the tool recorded none."""
        record = self.manifest.get("release_audit")
        return dict(record) if isinstance(record, dict) else None

    def _audit_line(self) -> str:
        record = self.release_audit
        if record is None:
            return "none recorded"
        if record.get("status") == "passed":
            return f"passed: worst case {100 * record['risk']:.1f}% (threshold {100 * record['max_risk']:.1f}%)"
        return str(record.get("status"))

    def rejected(self) -> pd.DataFrame:
        """Rows rejected and fields blanked: row number, field, reason (never the value)."""
        return pd.read_csv(self.folder / "rejected.csv")

    def reasons(self) -> pd.DataFrame:
        """Counts of rejected rows and blanked fields by reason."""
        rows = [{"action": action, "reason": reason, "rows": n}
                for action, key in (("rejected", "rejected_by_reason"), ("blanked", "blanked_by_reason"))
                for reason, n in (self.counts.get(key) or {}).items()]
        return pd.DataFrame(rows, columns=["action", "reason", "rows"])

    def _repr_html_(self) -> str:
        c = self.counts
        return _html_card(f"Encoded extract: {self.source}", {
            "rows read": c["rows_read"], "rows accepted": c["rows_accepted"], "rows rejected": c["rows_rejected"],
            "records": c["records"], "identifier sets": c["identities"], "key check value": self.manifest["kcv"],
            "release audit": self._audit_line()},
            note=str(self.folder))


@dataclass(frozen=True)
class LinkResult(_DictResult):
    """A link folder (``linkage link``): person crosswalk, scored pairs, model and report."""

    folder: Path
    manifest: dict[str, Any] = field(repr=False)

    def _raw(self) -> dict[str, Any]:
        return self.manifest

    @property
    def counts(self) -> dict[str, Any]:
        return dict(self.manifest["counts"])

    @property
    def persons(self) -> int:
        return int(self.manifest["counts"]["persons"])

    @property
    def report_path(self) -> Path:
        return self.folder / "report.html"

    def crosswalk(self) -> pd.DataFrame:
        """One row per record: person_id, source, record_id."""
        return pd.read_parquet(self.folder / "crosswalk.parquet")

    def pairs(self) -> pd.DataFrame:
        """Scored pairs above the threshold (identity ids and match weights; no tokens)."""
        return pd.read_parquet(self.folder / "pairs.parquet")

    def records_per_source(self) -> pd.DataFrame:
        c = self.counts
        return pd.DataFrame([{"source": s, "records": n, "identifier sets": c["identities"].get(s, 0)}
                             for s, n in c["records"].items()])

    def _repr_html_(self) -> str:
        c, g = self.counts, self.manifest.get("chain_guards", {})
        return _html_card("Link", {
            "records": sum(c["records"].values()), "persons": c["persons"],
            "persons in two or more sources": c["persons_in_two_or_more_sources"],
            "pairs at threshold": c.get("pairs_at_threshold", 0),
            "flagged: conflicting identifiers": g.get("clusters_with_conflicting_identifiers", 0),
            "flagged: oversized": g.get("clusters_over_size_limit", 0)}, note=str(self.report_path))


@dataclass(frozen=True)
class Evaluation(_DictResult):
    """Accuracy of a link against known truth (synthetic or benchmark data only)."""

    metrics: dict[str, Any] = field(repr=False)

    def _raw(self) -> dict[str, Any]:
        return self.metrics

    @property
    def precision(self) -> float:
        return float(self.metrics["pairwise"]["precision"])

    @property
    def recall(self) -> float:
        return float(self.metrics["pairwise"]["recall"])

    @property
    def f1(self) -> float:
        return float(self.metrics["pairwise"]["f1"])

    def to_frame(self) -> pd.DataFrame:
        """Pairwise and cluster metrics as rows of (level, metric, value)."""
        return pd.DataFrame([{"level": level, "metric": k, "value": v}
                             for level in ("pairwise", "clusters") for k, v in self.metrics[level].items()])

    def __repr__(self) -> str:
        return f"Evaluation(precision={self.precision:.4f}, recall={self.recall:.4f}, f1={self.f1:.4f})"

    def _repr_html_(self) -> str:
        p, c = self.metrics["pairwise"], self.metrics["clusters"]
        return _html_card("Evaluation against truth", {
            "records evaluated": self.metrics["records"], "pairwise precision": p["precision"],
            "pairwise recall": p["recall"], "pairwise F1": p["f1"], "true persons": c["true_persons"],
            "predicted persons": c["predicted_persons"], "exactly recovered": c["exactly_recovered"]})


@dataclass(frozen=True)
class CohortRelease(_DictResult):
    """A researcher release folder (``linkage cohort``): disclosure-controlled tables and report."""

    folder: Path
    summary: dict[str, Any] = field(repr=False)

    def _raw(self) -> dict[str, Any]:
        return self.summary

    @property
    def people_rounded(self) -> int:
        return int(self.summary["people_rounded"])

    @property
    def report_path(self) -> Path:
        return self.folder / "report.html"

    @property
    def table_names(self) -> list[str]:
        return sorted(f[:-8] for f in self.summary["files"] if f.endswith(".parquet"))

    def table(self, name: str) -> pd.DataFrame:
        """One released table by name (e.g. ``cohort_summary``, ``factor_prevalence``), as released."""
        if name not in self.table_names:
            raise KeyError(f"{name}: not a released table ({', '.join(self.table_names)})")
        return pd.read_parquet(self.folder / f"{name}.parquet")

    def cohort_summary(self) -> pd.DataFrame:
        """The released cohort summary table (one row per group), as written for researchers."""
        return self.table("cohort_summary")

    def _repr_html_(self) -> str:
        fired = sum((self.summary.get("disclosure_summary") or {}).values())
        return _html_card("Cohort release", {"people (rounded)": self.people_rounded,
                                             "tables": len(self.table_names),
                                             "cells changed by disclosure rules": fired},
                          note=str(self.report_path))


@dataclass(frozen=True)
class AuditResult(_DictResult):
    """A privacy audit of one encoded extract (attacks without the key)."""

    result: dict[str, Any] = field(repr=False)

    def _raw(self) -> dict[str, Any]:
        return self.result

    @property
    def passed(self) -> bool:
        return bool(self.result["passed"])

    def columns(self) -> pd.DataFrame:
        """One row per attacked column: attack, exposure and (when verified) the re-identified share."""
        return pd.DataFrame(self.result["columns"])

    def _repr_html_(self) -> str:
        return _html_card("Privacy audit", {"passed": self.passed, "columns attacked": len(self.result["columns"])})


@dataclass(frozen=True)
class SyntheticExtracts(_DictResult):
    """Synthetic partner extracts with their truth file (for trying and testing linkage)."""

    folder: Path
    summary: dict[str, Any] = field(repr=False)

    def _raw(self) -> dict[str, Any]:
        return self.summary

    def path(self, source: str) -> Path:
        """The raw CSV of one source (``police``, ``education``, ``social_care``)."""
        return self.folder / f"{source}.csv"

    @property
    def truth_path(self) -> Path:
        return self.folder / "truth.csv"

    def extract(self, source: str) -> pd.DataFrame:
        return pd.read_csv(self.path(source), dtype=str, keep_default_na=False)

    def truth(self) -> pd.DataFrame:
        return pd.read_csv(self.truth_path, dtype=str)

    def _repr_html_(self) -> str:
        return _html_card("Synthetic extracts", {"people": self.summary["people"],
                                                 **{f"{s} rows": n for s, n in self.summary["rows"].items()}},
                          note=str(self.folder))
