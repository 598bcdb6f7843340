"""Cross-checks between identifier packages: one key, one project, distinct sources, same encodings.

The KCV in a manifest is only a claim: a partner can edit it. Tokens made under another key (or
project) never agree with ours, so the claim is also tested against the data: low-cardinality encodings
that every honest extract shares must have values in common. Sex is such a column: an extract holding
both codes shares at least one with any other that does. Disjoint sex tokens mean the extracts were not
encoded with one key, whatever the manifests say. (Year of birth is not used: two honest extracts of
different age groups can share no year.) Extracts without a sex column are not probed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from linkage.contracts.identifier_package import IdentifierPackage
from linkage.errors import LinkageInputError, ManifestMismatchError

#: Encodings with so few possible values that two honest extracts holding two or more each must share one.
KEY_PROBE_COLUMNS = ("sex__exact",)
#: Below this many distinct values on both sides, a disjoint probe proves nothing and is skipped.
KEY_PROBE_MIN_VALUES = 2


def _distinct(path: Path, column: str) -> set[str]:
    table = pq.read_table(path, columns=[column])
    return {v for v in pc.unique(table.column(column).combine_chunks()).to_pylist() if v}


def check_key_agreement(packages: list[IdentifierPackage]) -> None:
    """Refuse packages whose tokens cannot have come from one key and project (see module docstring)."""
    first = packages[0]
    for other in packages[1:]:
        shared = [c for c in KEY_PROBE_COLUMNS if c in first.columns and c in other.columns]
        verdicts = []
        for column in shared:
            a, b = _distinct(first.tokens_path, column), _distinct(other.tokens_path, column)
            if len(a) >= KEY_PROBE_MIN_VALUES and len(b) >= KEY_PROBE_MIN_VALUES:
                verdicts.append(bool(a & b))
        if verdicts and not any(verdicts):
            raise ManifestMismatchError(
                f"{other.path}: its tokens share no value with {first.path} on {', '.join(shared)} although the "
                "manifests show the same key check value; it was encoded with another key or project "
                "(manifest edited?) and would give no links")


def encoding_signature(spec: dict[str, Any], bloom: dict[str, Any] | None) -> dict[str, Any]:
    sig = {k: v for k, v in spec.items() if k in ("field", "encoding", "type")}
    if spec.get("type") == "bloom":
        sig["bloom"] = {k: (bloom or {}).get(k, spec.get(k)) for k in ("bits", "hashes", "ngram")}
    return sig


def check_agreement(packages: list[IdentifierPackage], *, probe_tokens: bool = True) -> None:
    """Same KCV and project everywhere, one package per source, each column encoded the same way."""
    if not packages:
        raise LinkageInputError("no encoded extracts given")
    first = packages[0].manifest
    seen_sources: dict[str, Path] = {}
    for package in packages:
        m = package.manifest
        if m.counts.identities == 0:
            raise LinkageInputError("holds no identifier sets (every row was rejected?); re-encode it or leave "
                                    "it out", file=str(package.path / "manifest.json"), field="counts.identities")
        if m.kcv != first.kcv:
            raise ManifestMismatchError(
                f"{package.path}: key check value {m.kcv} differs from {packages[0].path} "
                f"({first.kcv}); the extracts were encoded with different keys and would give no links")
        if m.project_id != first.project_id:
            raise ManifestMismatchError(
                f"{package.path}: project id '{m.project_id}' differs from {packages[0].path} "
                f"('{first.project_id}'); tokens of different projects never match")
        if m.source in seen_sources:
            raise ManifestMismatchError(f"{package.path}: source '{m.source}' is also the source of "
                                        f"{seen_sources[m.source]}; re-encode one with a distinct --source")
        seen_sources[m.source] = package.path
    reference: dict[str, tuple[Path, dict[str, Any]]] = {}
    for package in packages:
        bloom = package.manifest.encodings.bloom
        for col, spec in package.columns.items():
            sig = encoding_signature(spec.model_dump(), bloom)
            if col in reference and reference[col][1] != sig:
                raise ManifestMismatchError(f"{package.path}: column '{col}' is encoded differently from "
                                            f"{reference[col][0]} ({sig} vs {reference[col][1]})")
            reference.setdefault(col, (package.path, sig))
    if probe_tokens and len(packages) > 1:
        check_key_agreement(packages)
