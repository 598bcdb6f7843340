"""Checks run before any linkage work: manifests valid, names grammatical, files untouched, one key.

Everything here goes through :mod:`linkage.contracts`: every source and column name that later reaches
SQL has matched the naming grammar, every checksum and the Parquet schema have been verified, and the
extracts agree on key check value (also tested against the tokens themselves), project and encodings.
A key or project mismatch would not fail loudly later: tokens made under different keys simply never
agree, so the link would quietly find nobody. Refusing up front, naming the extract, is the only safe way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linkage.contracts import IdentifierPackage, check_agreement, read_identifier_package
from linkage.contracts.identifier_package import REQUIRED_FILES, SUPPORTED_MAJOR_VERSIONS
from linkage.errors import LinkageInputError

__all__ = ["REQUIRED_FILES", "SUPPORTED_MAJOR_VERSIONS", "Extract", "check_extracts", "read_manifest"]


@dataclass(frozen=True)
class Extract:
    """One checked encoded extract: the typed package and a read-only dict view of its manifest."""

    path: Path
    manifest: dict[str, Any]
    package: IdentifierPackage | None = field(default=None, compare=False)

    @property
    def source(self) -> str:
        return str(self.manifest["source"])

    @property
    def tokens_path(self) -> Path:
        return self.path / "tokens.parquet"

    @property
    def columns(self) -> dict[str, dict[str, Any]]:
        return self.manifest["encodings"]["columns"]

    @property
    def one_person_per_id(self) -> bool:
        return bool(self.manifest["one_person_per_id"])

    @classmethod
    def from_package(cls, package: IdentifierPackage) -> Extract:
        return cls(package.path, package.manifest.model_dump(mode="json"), package)


def read_manifest(extract_dir: Path) -> dict[str, Any]:
    """The validated manifest of one extract as a dict (files not verified)."""
    return read_identifier_package(extract_dir, verify=False).manifest.model_dump(mode="json")


def check_extracts(extract_dirs: list[str | Path]) -> list[Extract]:
    """Validate every extract and their agreement; raise one clear error naming the first culprit.

    The release gate (a passing audit in each manifest) is not checked here but by the link job
    (:func:`linkage.audit.gate.check_release_audits`), which is the one place it lives."""
    if not extract_dirs:
        raise LinkageInputError("no encoded extracts given")
    packages = [read_identifier_package(d) for d in extract_dirs]
    check_agreement(packages)
    extracts = [Extract.from_package(p) for p in packages]
    return extracts
