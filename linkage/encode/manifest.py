"""The manifest of an encoded extract: what it is, how it was made, and checksums of its files.

The VRN checks it before linking (same key check value, same project, files unchanged), and every later
manifest refers back to it by checksum, so any output can be traced to its inputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from linkage.config import SCHEMA_MODELS
from linkage.errors import LinkageInputError, ManifestMismatchError
from linkage.io import sha256_file

SCHEMA_VERSION = "1.0"
ENCODED_FILES = ("tokens.parquet", "payload.parquet", "rejected.csv")


class ColumnSpec(BaseModel):
    field: str
    encoding: str
    type: Literal["token", "token_list", "bloom"]


class EncodingInfo(BaseModel):
    columns: dict[str, ColumnSpec]
    bloom: dict[str, Any] | None = None
    token_bits: int = 128


class Counts(BaseModel):
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    records: int
    identities: int
    placeholder_dobs: int = 0
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    blanked_by_reason: dict[str, int] = Field(default_factory=dict)


class EncodedManifest(BaseModel):
    """manifest.json of an encoded extract (docs/data-contracts.md §2)."""

    schema_version: str = SCHEMA_VERSION
    kind: Literal["encoded-extract"] = "encoded-extract"
    tool_version: str
    source: str
    project_id: str
    kcv: str
    one_person_per_id: bool
    payload_columns: dict[str, str]
    encodings: EncodingInfo
    counts: Counts
    files: dict[str, str]
    created_at: str
    elapsed_seconds: float
    release_audit: dict[str, Any] | None = None  # added by `linkage hash` (linkage.audit.gate)


SCHEMA_MODELS["encoded-manifest"] = EncodedManifest


def read_manifest(encoded_dir: str | Path, verify_files: bool = True) -> EncodedManifest:
    """Read and validate an encoded extract's manifest; optionally check every file's checksum."""
    folder = Path(encoded_dir)
    path = folder / "manifest.json"
    if not path.is_file():
        raise LinkageInputError("manifest.json not found: not an encoded extract", file=str(folder))
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        manifest = EncodedManifest.model_validate(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LinkageInputError("manifest is not valid JSON", file=str(path)) from None
    except ValidationError as exc:
        loc = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise LinkageInputError(f"manifest does not validate ({loc}: {exc.errors()[0]['msg']})",
                                file=str(path)) from None
    if verify_files:
        for name, expected in manifest.files.items():
            file = folder / name
            if not file.is_file():
                raise ManifestMismatchError(f"{file}: listed in the manifest but missing")
            if sha256_file(file) != expected:
                raise ManifestMismatchError(f"{file}: checksum differs from the manifest "
                                            "(truncated, tampered or replaced); refusing to use it")
    return manifest
