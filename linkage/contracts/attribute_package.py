"""Contract of the attribute package: a partner's payload, sealed for the analysis environment only.

Folder: ``attributes.enc`` (the payload as Parquet, encrypted by :mod:`linkage.encrypt`) and
``manifest.json`` (:class:`AttributePackageManifest`). The linkage unit can store and forward the folder
but holds no key that opens it. :func:`read_attribute_package` is the only way the analysis step opens
one: it validates the manifest, checks the file checksum, checks that the sealed header agrees with the
manifest, decrypts and authenticates, and checks the Parquet's columns and row count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from linkage.errors import LinkageInputError, ManifestMismatchError
from linkage.io import sha256_file

SCHEMA_VERSION = "1.0"
KIND: Literal["attribute-package"] = "attribute-package"
CIPHERTEXT_FILE = "attributes.enc"
SHA256 = r"^[0-9a-f]{64}$"
FINGERPRINT = r"^[0-9a-f]{4}(:[0-9a-f]{4}){7}$"
EXTRACT_ID = r"^[0-9a-f]{32}$"
SOURCE = r"^[A-Za-z0-9_\-]{1,64}$"
COLUMN = r"^[A-Za-z0-9_\-. ]{1,100}$"
#: Columns every attribute package's Parquet holds besides the declared payload columns.
KEY_COLUMNS = ("record_id", "row_number")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttributeColumn(_Strict):
    """One payload column as shipped: its type after generalisation, and the generalisation applied."""

    type: Literal["string", "int", "float", "bool", "date", "datetime"]
    generalise: str = Field("none", pattern=r"^[a-z_]{1,32}$")


class IdentifierPackageRef(_Strict):
    """The identifier package made in the same run (what the link manifest must name)."""

    tokens_sha256: str = Field(pattern=SHA256)


class AttributeCounts(_Strict):
    rows: int = Field(ge=0, description="payload rows = accepted rows of the extract")


class AttributePackageManifest(_Strict):
    """manifest.json of an attribute package (docs/data-contracts.md, "Attribute package")."""

    schema_version: str = Field(SCHEMA_VERSION, pattern=r"^1\.[0-9]+$")
    kind: Literal["attribute-package"] = KIND
    tool_version: str = Field(max_length=64)
    source: str = Field(pattern=SOURCE)
    project_id: str = Field(pattern=r"^[^\x00-\x1f\x7f]{1,200}$")
    kcv: str = Field(pattern=r"^[0-9a-f]{12}$", description="project key check value (the key is not needed)")
    extract_id: str = Field(pattern=EXTRACT_ID, description="shared with the identifier package's manifest")
    identifier_package: IdentifierPackageRef
    recipient_fingerprint: str = Field(pattern=FINGERPRINT, description="the analysis public key it is sealed to")
    encryption: dict[str, str]
    columns: dict[str, AttributeColumn]
    counts: AttributeCounts
    plaintext_sha256: str = Field(pattern=SHA256)
    files: dict[str, str] = Field(description='exactly {"attributes.enc": SHA-256 of the ciphertext}')
    created_at: str = Field(max_length=64)


def _check_column_names(manifest: AttributePackageManifest, path: Path) -> None:
    import re

    for name in manifest.columns:
        if not re.fullmatch(COLUMN, name) or name in KEY_COLUMNS:
            raise LinkageInputError("column name is not allowed", file=str(path), field="columns")
    if set(manifest.files) != {CIPHERTEXT_FILE}:
        raise LinkageInputError(f"must list exactly {CIPHERTEXT_FILE}", file=str(path), field="files")
    for name, digest in manifest.files.items():
        if not re.fullmatch(SHA256, digest):
            raise LinkageInputError("checksum is not a SHA-256 hex digest", file=str(path), field=f"files.{name}")


def read_attribute_manifest(folder: str | Path) -> AttributePackageManifest:
    """Validate an attribute package's manifest.json (no key needed)."""
    folder = Path(folder)
    path = folder / "manifest.json"
    if not folder.is_dir():
        raise LinkageInputError("attribute package folder not found", file=str(folder))
    if not path.is_file():
        raise LinkageInputError("manifest.json is missing; is this an attribute package?", file=str(folder))
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LinkageInputError("manifest is not valid JSON", file=str(path)) from None
    if isinstance(data, dict) and data.get("kind") == "encoded-extract":
        raise LinkageInputError("this is an identifier package, not an attribute package", file=str(folder))
    try:
        manifest = AttributePackageManifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LinkageInputError(f"manifest does not validate ({first['msg']})", file=str(path),
                                field=".".join(str(p) for p in first["loc"])) from None
    _check_column_names(manifest, path)
    return manifest


@dataclass(frozen=True)
class AttributePackage:
    """An opened attribute package: folder, manifest and the decrypted, checked payload table."""

    path: Path
    manifest: AttributePackageManifest
    table: pa.Table


def read_attribute_package(folder: str | Path, private_key: X25519PrivateKey) -> AttributePackage:
    """Open an attribute package with the analysis private key; every failure is one line, no value."""
    from linkage.encrypt import decrypt_file, read_header
    from linkage.keys import public_key_fingerprint

    folder = Path(folder)
    manifest = read_attribute_manifest(folder)
    mine = public_key_fingerprint(private_key)
    if manifest.recipient_fingerprint != mine:
        raise ManifestMismatchError(
            f"{folder}: encrypted to analysis key {manifest.recipient_fingerprint}, but this analysis key is "
            f"{mine}; ask the partner to re-encrypt to the right public key")
    cipher = folder / CIPHERTEXT_FILE
    if not cipher.is_file():
        raise LinkageInputError("file listed in the manifest is missing", file=str(cipher))
    if sha256_file(cipher) != manifest.files[CIPHERTEXT_FILE]:
        raise ManifestMismatchError(f"{cipher}: SHA-256 does not match the manifest (file truncated, corrupted "
                                    "or changed after encryption); ask the partner to resend")
    header = read_header(cipher)[0]
    for name in ("source", "project_id", "extract_id", "recipient_fingerprint"):
        if header.get(name) != getattr(manifest, name):
            raise ManifestMismatchError(f"{cipher}: the sealed header's {name} differs from the manifest's "
                                        "(package relabelled or files mixed up); refusing to use it")
    plaintext = decrypt_file(cipher, private_key, plaintext_sha256=manifest.plaintext_sha256,
                             rows=manifest.counts.rows, tokens_sha256=manifest.identifier_package.tokens_sha256)
    try:
        table = pq.read_table(pa.BufferReader(plaintext))
    except Exception as exc:  # authenticated but unreadable: a partner-side bug, not an attack
        raise LinkageInputError(f"decrypted payload is not readable Parquet ({type(exc).__name__})",
                                file=str(cipher)) from None
    names = table.column_names
    if names[:len(KEY_COLUMNS)] != list(KEY_COLUMNS) or sorted(names[len(KEY_COLUMNS):]) != sorted(manifest.columns):
        raise LinkageInputError("decrypted payload's columns differ from the manifest", file=str(cipher))
    if table.num_rows != manifest.counts.rows:
        raise LinkageInputError("decrypted payload's row count differs from the manifest", file=str(cipher))
    return AttributePackage(folder, manifest, table)


def register_schema() -> None:
    from linkage.config import SCHEMA_MODELS

    SCHEMA_MODELS["attribute-package-manifest"] = AttributePackageManifest


register_schema()
