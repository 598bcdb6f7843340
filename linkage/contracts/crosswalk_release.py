"""Contract of the crosswalk the analysis step reads: a per-release crosswalk, or a link folder itself.

``linkage export-crosswalk`` writes a release folder: ``crosswalk.parquet`` (``person_id``, ``source``,
``record_id``, with per-release person ids) and ``manifest.json`` (:class:`CrosswalkReleaseManifest`),
which names each linked extract by source, extract id and tokens checksum, never by path. The analysis
step also accepts a link folder directly (tests, single-site set-ups). :func:`read_crosswalk` opens
either, validates the manifest, verifies the crosswalk's checksum and columns, and returns the extracts
the crosswalk covers in one shape (:class:`LinkedExtract`), so attribute packages can be checked
against them without reading raw JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from linkage.contracts.identifier_package import load_json, load_model_manifest
from linkage.contracts.link_output import CROSSWALK_COLUMNS, check_crosswalk_columns, read_link_output
from linkage.contracts.names import (
    EXTRACT_ID_PATTERN,
    KCV_PATTERN,
    PROJECT_ID_PATTERN,
    SHA256_PATTERN,
    SOURCE_PATTERN,
)
from linkage.errors import LinkageInputError, ManifestMismatchError

CROSSWALK_RELEASE_KIND = "crosswalk-release"
CROSSWALK_RELEASE_SCHEMA_VERSION = "1.0"


class ReleasedExtract(BaseModel):
    """One linked identifier package, as a crosswalk release names it (no path, no counts)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(pattern=SOURCE_PATTERN)
    extract_id: str | None = Field(None, pattern=EXTRACT_ID_PATTERN)
    tokens_sha256: str | None = Field(None, pattern=SHA256_PATTERN)


class CrosswalkReleaseManifest(BaseModel):
    """manifest.json of a per-release crosswalk (``linkage export-crosswalk``)."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"x-schema-version": CROSSWALK_RELEASE_SCHEMA_VERSION})

    schema_version: str = CROSSWALK_RELEASE_SCHEMA_VERSION
    kind: str = Field(CROSSWALK_RELEASE_KIND, pattern=r"^crosswalk-release$")
    release_id: str = Field(max_length=200)
    release_key_check_value: str = Field(pattern=KCV_PATTERN)
    project_id: str = Field(pattern=PROJECT_ID_PATTERN)
    kcv: str = Field(pattern=KCV_PATTERN, description="check value of the partners' key the extracts used")
    inputs: list[ReleasedExtract] = Field(min_length=1)
    link_manifest_sha256: str = Field(pattern=SHA256_PATTERN)
    counts: dict[str, int] = Field(default_factory=dict)
    files: dict[Literal["crosswalk.parquet"], Annotated[str, Field(pattern=SHA256_PATTERN)]] = Field(
        description="SHA-256 of crosswalk.parquet")
    created_at: str = Field(max_length=64)


@dataclass(frozen=True)
class LinkedExtract:
    """An extract the crosswalk covers: what an attribute package must match to be joined."""

    source: str
    extract_id: str | None
    tokens_sha256: str | None


@dataclass(frozen=True)
class CrosswalkSource:
    """A validated crosswalk folder (release or link) and the extracts it covers."""

    path: Path
    kind: Literal["crosswalk-release", "link"]
    project_id: str
    kcv: str
    extracts: tuple[LinkedExtract, ...]

    @property
    def crosswalk_path(self) -> Path:
        return self.path / "crosswalk.parquet"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def extracts_of(self, source: str) -> list[LinkedExtract]:
        return [e for e in self.extracts if e.source == source]


def read_crosswalk(folder: str | Path) -> CrosswalkSource:
    """Open a crosswalk release or a link folder: manifest validated, crosswalk checksum and columns checked.

    One-line errors name the file and field; a crosswalk altered after the manifest was written is refused.
    """
    from linkage.io import sha256_file

    path = Path(folder)
    manifest_path, crosswalk = path / "manifest.json", path / "crosswalk.parquet"
    for p in (manifest_path, crosswalk):
        if not p.is_file():
            raise LinkageInputError("not found; is this a crosswalk release or link folder?", file=str(p))
    data: Any = load_json(manifest_path)
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "link":
        # The link folder's own reader: every file its manifest lists is verified, columns checked.
        link = read_link_output(path).manifest
        return CrosswalkSource(path, "link", link.project_id, link.kcv, tuple(
            LinkedExtract(i.source, i.extract_id, i.files.get("tokens.parquet")) for i in link.inputs))
    if kind != CROSSWALK_RELEASE_KIND:
        raise LinkageInputError("not a link or crosswalk-release manifest", file=str(manifest_path), field="kind")
    release = load_model_manifest(manifest_path, CrosswalkReleaseManifest)
    expected = release.files.get("crosswalk.parquet")
    if expected is None:
        raise LinkageInputError("manifest does not name crosswalk.parquet", file=str(manifest_path), field="files")
    if sha256_file(crosswalk) != expected:
        raise ManifestMismatchError(f"{crosswalk}: SHA-256 does not match {manifest_path} (crosswalk changed after "
                                    "the release was made); refusing to use it")
    check_crosswalk_columns(crosswalk)
    return CrosswalkSource(path, "crosswalk-release", release.project_id, release.kcv, tuple(
        LinkedExtract(i.source, i.extract_id, i.tokens_sha256) for i in release.inputs))

__all__ = ["CROSSWALK_COLUMNS", "CROSSWALK_RELEASE_KIND", "CrosswalkReleaseManifest", "CrosswalkSource",
           "LinkedExtract", "ReleasedExtract", "read_crosswalk"]
