"""Contract of the link output: what the linkage unit hands the analysis step (``linkage link`` output).

Folder: ``crosswalk.parquet`` (``person_id``, ``source``, ``record_id``), ``pairs.parquet``, ``model.json``,
``report.html`` and ``manifest.json`` (this model), which names every input identifier package by its
files' checksums, the key check value and the project. :func:`read_link_output` validates all of it and,
given a key, checks that the key is the one the extracts were encoded with.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from linkage.contracts.identifier_package import load_model_manifest
from linkage.contracts.names import EXTRACT_ID_PATTERN, KCV_PATTERN, PROJECT_ID_PATTERN, SOURCE_PATTERN
from linkage.errors import LinkageInputError, ManifestMismatchError

CROSSWALK_COLUMNS = ("person_id", "source", "record_id")


class LinkInput(BaseModel):
    """One identifier package the link read, named by its files' checksums."""

    model_config = ConfigDict(extra="allow")

    source: str = Field(pattern=SOURCE_PATTERN)
    files: dict[str, str]
    path: str | None = None
    one_person_per_id: bool = False
    extract_id: str | None = Field(None, pattern=EXTRACT_ID_PATTERN,
                                   description="the identifier package's extract id (as its attribute package's)")
    counts: dict[str, Any] = Field(default_factory=dict)


LINK_SCHEMA_VERSION = "1.0"


class LinkOutputManifest(BaseModel):
    """manifest.json of a link folder (docs/data-contracts.md)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"x-schema-version": LINK_SCHEMA_VERSION})

    schema_version: int | str = 1
    kind: str = Field("link", pattern=r"^link$")
    tool_version: str = Field(max_length=64)
    project_id: str = Field(pattern=PROJECT_ID_PATTERN)
    kcv: str = Field(pattern=KCV_PATTERN)
    inputs: list[LinkInput] = Field(min_length=1)
    files: dict[str, str] | None = Field(None, description="checksums of the link folder's own files, when "
                                         "the linker records them; verified when present")

    def sources(self) -> list[str]:
        return [i.source for i in self.inputs]


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or (
        pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type))


def check_crosswalk_columns(crosswalk: Path) -> None:
    """The crosswalk is readable Parquet with ``person_id``, ``source`` and ``record_id`` as text."""
    try:
        schema = pq.read_schema(crosswalk)
    except Exception:  # pyarrow raises several types for damaged files
        raise LinkageInputError("not a readable Parquet file", file=str(crosswalk)) from None
    for column in CROSSWALK_COLUMNS:
        if column not in schema.names or not _is_text(schema.field(column).type):
            raise LinkageInputError("required text column is missing", file=str(crosswalk), field=column)


@dataclass(frozen=True)
class LinkOutput:
    path: Path
    manifest: LinkOutputManifest

    @property
    def crosswalk_path(self) -> Path:
        return self.path / "crosswalk.parquet"


def read_link_output(folder: str | Path, *, key: bytes | None = None) -> LinkOutput:
    """Open a link folder: manifest validated, crosswalk present with its columns, KCV checked against ``key``."""
    from linkage.io import sha256_file
    from linkage.keys import key_check_value

    path = Path(folder)
    manifest_path, crosswalk = path / "manifest.json", path / "crosswalk.parquet"
    for p in (manifest_path, crosswalk):
        if not p.is_file():
            raise LinkageInputError("not found; is this a link folder?", file=str(p))
    manifest = load_model_manifest(manifest_path, LinkOutputManifest)
    for name, expected in sorted((manifest.files or {}).items()):
        if "/" in name or "\\" in name or not (path / name).is_file() or sha256_file(path / name) != expected:
            raise ManifestMismatchError(f"{path / name}: missing or its SHA-256 differs from the link manifest")
    check_crosswalk_columns(crosswalk)
    if key is not None and not hmac.compare_digest(key_check_value(key), manifest.kcv):
        raise ManifestMismatchError(f"{manifest_path}: the key's check value {key_check_value(key)} differs from "
                                    f"the link's ({manifest.kcv}); use the key the extracts were encoded with")
    return LinkOutput(path, manifest)
