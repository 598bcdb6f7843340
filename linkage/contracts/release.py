"""Contract of a release: what the analysis step hands researchers (``linkage cohort`` output).

Folder: tables (CSV + Parquet), ``report.html`` and ``manifest.json`` (this model), which lists every
output file with its checksum and every input by checksum. :func:`read_release` validates the manifest
and verifies every output file, so a researcher (or an output checker) can tell the pack is whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from linkage.contracts.identifier_package import load_model_manifest
from linkage.contracts.names import FILE_NAME_PATTERN, SHA256_PATTERN
from linkage.errors import LinkageInputError, ManifestMismatchError

RELEASE_SCHEMA_VERSION = "1.0"


class ReleaseManifest(BaseModel):
    """manifest.json of a cohort release (docs/data-contracts.md)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"x-schema-version": RELEASE_SCHEMA_VERSION})

    kind: str = Field("cohort-release", pattern=r"^cohort-release$")
    tool_version: str = Field(max_length=64)
    cohort: str = Field(max_length=200)
    inputs: dict[str, Any]
    outputs: dict[str, str] = Field(min_length=1)
    disclosure: dict[str, Any]

    @field_validator("outputs")
    @classmethod
    def _names(cls, outputs: dict[str, str]) -> dict[str, str]:
        import re

        for name, digest in outputs.items():
            if not re.fullmatch(FILE_NAME_PATTERN, name) or not re.fullmatch(SHA256_PATTERN, digest):
                raise ValueError("an output is not a bare file name with a SHA-256 digest")
        return outputs


@dataclass(frozen=True)
class Release:
    path: Path
    manifest: ReleaseManifest


def read_release(folder: str | Path) -> Release:
    from linkage.io import sha256_file

    path = Path(folder)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise LinkageInputError("manifest.json not found; is this a release folder?", file=str(path))
    manifest = load_model_manifest(manifest_path, ReleaseManifest)
    for name, expected in sorted(manifest.outputs.items()):
        file = path / name
        if not file.is_file() or sha256_file(file) != expected:
            raise ManifestMismatchError(f"{file}: missing or its SHA-256 differs from the release manifest")
    return Release(path, manifest)
