"""The manifest of an encoded extract: what it is, how it was made, and checksums of its files.

The model itself is the identifier-package contract (:mod:`linkage.contracts.identifier_package`);
this module is the partner side's view of it. The VRN checks it before linking (same key check value,
same project, files unchanged), and every later manifest refers back to it by checksum.
"""

from __future__ import annotations

from pathlib import Path

from linkage.config import SCHEMA_MODELS
from linkage.contracts import CONTRACT_SCHEMAS
from linkage.contracts.identifier_package import (
    SCHEMA_VERSION,
    ColumnSpec,
    Counts,
    EncodingInfo,
    IdentifierPackageManifest,
    read_identifier_package,
)

ENCODED_FILES = ("tokens.parquet", "rejected.csv")  # the payload travels in the attribute package
EncodedManifest = IdentifierPackageManifest

SCHEMA_MODELS["encoded-manifest"] = EncodedManifest
SCHEMA_MODELS.update(CONTRACT_SCHEMAS)

__all__ = ["ENCODED_FILES", "SCHEMA_VERSION", "ColumnSpec", "Counts", "EncodedManifest", "EncodingInfo",
           "read_manifest"]


def read_manifest(encoded_dir: str | Path, verify_files: bool = True) -> EncodedManifest:
    """Read and validate an encoded extract's manifest; optionally check every file's checksum."""
    return read_identifier_package(encoded_dir, verify=verify_files).manifest
