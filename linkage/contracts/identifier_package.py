"""Contract of the identifier package: what a partner hands the linkage unit (``linkage hash`` output).

Folder: ``tokens.parquet`` (``record_id``, ``identity_id`` and one column per encoding), ``rejected.csv``
(row, field, reason, action; never a value) and ``manifest.json`` (this model). An attribute package
(``payload.parquet``) may still sit in the same folder from older versions; it is tolerated, never read here.

:func:`read_identifier_package` is the only way the linkage unit opens one: it validates the manifest,
checks every name against the grammar in :mod:`linkage.contracts.names`, verifies every checksum and the
Parquet schema, and returns a typed :class:`IdentifierPackage`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from linkage.contracts.names import (
    ENCODING_LABEL_PATTERN,
    EXTRACT_ID_PATTERN,
    FIELD_PATTERN,
    FILE_NAME_PATTERN,
    KCV_PATTERN,
    PROJECT_ID_PATTERN,
    SHA256_PATTERN,
    SOURCE_PATTERN,
    describe_column_rule,
    is_valid_column,
    safe_location,
)
from linkage.errors import LinkageInputError, ManifestMismatchError
from linkage.io import sha256_file

ManifestModel = TypeVar("ManifestModel", bound=BaseModel)

SCHEMA_VERSION = "1.1"
SUPPORTED_MAJOR_VERSIONS = frozenset({"1"})
KIND = "encoded-extract"
REQUIRED_FILES = ("tokens.parquet",)
#: Columns of tokens.parquet that are not encodings.
KEY_COLUMNS = ("record_id", "identity_id")


class ColumnSpec(BaseModel):
    """One encoding column: which identifier it encodes, how, and its storage type.

    Further parameters (e.g. a Bloom column's ``bits``) are allowed, as whole numbers or short labels only.
    """

    model_config = ConfigDict(extra="allow")

    field: str = Field(pattern=FIELD_PATTERN)
    encoding: str = Field(pattern=ENCODING_LABEL_PATTERN)
    type: Literal["token", "token_list", "bloom"]

    @model_validator(mode="after")
    def _simple_parameters(self) -> ColumnSpec:
        import re

        for name, value in (self.model_extra or {}).items():
            if not re.fullmatch(FIELD_PATTERN, name):
                raise ValueError("a column parameter name breaks the naming grammar")
            ok = (isinstance(value, int | float) and not isinstance(value, bool)) or (
                isinstance(value, str) and re.fullmatch(ENCODING_LABEL_PATTERN, value) is not None)
            if not ok:
                raise ValueError(f"column parameter {name} must be a number or a short label")
        return self


class EncodingInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: dict[str, ColumnSpec]
    bloom: dict[str, Any] | None = None
    token_bits: int = Field(128, ge=64, le=512)

    @field_validator("columns")
    @classmethod
    def _grammar(cls, columns: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        if not columns:
            raise ValueError("declares no encoding columns")
        for name in columns:
            if not is_valid_column(name):
                # The name itself may be hostile text: say how long it is, never echo it.
                raise ValueError(f"a column name ({len(name)} characters) breaks the naming grammar "
                                 f"({describe_column_rule()})")
        return columns

    @field_validator("bloom")
    @classmethod
    def _bloom_numbers(cls, bloom: dict[str, Any] | None) -> dict[str, Any] | None:
        for key in ("bits", "hashes", "ngram"):
            if bloom is not None and key in bloom:
                value = bloom[key]
                if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65536:
                    raise ValueError(f"bloom.{key} must be a whole number between 1 and 65536")
        return bloom


class Counts(BaseModel):
    """Rows read, accepted and rejected; every rejected row and blanked value counted per reason."""

    rows_read: int = Field(ge=0)
    rows_accepted: int = Field(ge=0)
    rows_rejected: int = Field(ge=0)
    records: int = Field(ge=0)
    identities: int = Field(ge=0)
    placeholder_dobs: int = Field(0, ge=0)
    non_calendar_dobs_kept_as_digits: int = Field(
        0, ge=0, description="DOBs well formed but not on the calendar (month 81…): blanked as dates, kept only "
                             "as one-digit-edit tokens (dob__del1)")
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    blanked_by_reason: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _adds_up(self) -> Counts:
        if self.rows_accepted + self.rows_rejected != self.rows_read:
            raise ValueError("rows_accepted + rows_rejected differs from rows_read")
        return self


class IdentifierPackageManifest(BaseModel):
    """manifest.json of an identifier package (docs/data-contracts.md)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"x-schema-version": SCHEMA_VERSION})
    # extra="allow": newer minor versions may add fields; every name that reaches SQL is still checked

    schema_version: str = Field(SCHEMA_VERSION, pattern=r"^[0-9]+\.[0-9]+$")
    kind: Literal["encoded-extract"] = "encoded-extract"
    tool_version: str = Field(max_length=64)
    source: str = Field(pattern=SOURCE_PATTERN)
    project_id: str = Field(pattern=PROJECT_ID_PATTERN)
    kcv: str = Field(pattern=KCV_PATTERN)
    one_person_per_id: bool
    extract_id: str | None = Field(None, pattern=EXTRACT_ID_PATTERN,
                                   description="shared with the attribute package of the same run")
    release_audit: dict[str, Any] | None = Field(None, description="the partner's release audit verdict, added by "
                                                 "`linkage hash` (linkage.audit.gate)")
    payload_columns: dict[str, str] = Field(default_factory=dict, description="legacy: the attribute package "
                                            "now describes its own columns")
    encodings: EncodingInfo
    counts: Counts
    files: dict[str, str]
    created_at: str = Field(max_length=64)
    elapsed_seconds: float = Field(ge=0)

    @field_validator("schema_version")
    @classmethod
    def _major(cls, version: str) -> str:
        if version.split(".")[0] not in SUPPORTED_MAJOR_VERSIONS:
            raise ValueError(f"unsupported schema version (this tool reads {sorted(SUPPORTED_MAJOR_VERSIONS)}.x)")
        return version

    @field_validator("files")
    @classmethod
    def _file_names(cls, files: dict[str, str]) -> dict[str, str]:
        import re

        for name, digest in files.items():
            if not re.fullmatch(FILE_NAME_PATTERN, name):
                raise ValueError("a listed file name is not a bare file name (paths are refused)")
            if not re.fullmatch(SHA256_PATTERN, digest):
                raise ValueError("a listed checksum is not a SHA-256 hex digest")
        for name in REQUIRED_FILES:
            if name not in files:
                raise ValueError(f"lists no checksum for {name}")
        return files


@dataclass(frozen=True)
class IdentifierPackage:
    """A validated identifier package: its folder and its typed manifest."""

    path: Path
    manifest: IdentifierPackageManifest

    @property
    def source(self) -> str:
        return self.manifest.source

    @property
    def tokens_path(self) -> Path:
        return self.path / "tokens.parquet"

    @property
    def columns(self) -> dict[str, ColumnSpec]:
        return self.manifest.encodings.columns


def _first_error(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    loc = safe_location(first["loc"])
    # Keep only messages that cannot carry the input: pattern and literal errors are described instead.
    message = first["msg"] if first["type"] not in ("literal_error", "enum") else "value not allowed here"
    if first["type"] == "string_pattern_mismatch":
        message = "breaks the naming rule for this field"
    return loc, message


def parse_manifest(data: Any, path: Path) -> IdentifierPackageManifest:
    """Validate a parsed manifest.json; one-line errors naming the file and field, never a value."""
    if not isinstance(data, dict):
        raise LinkageInputError("manifest is not a JSON object", file=str(path))
    try:
        return IdentifierPackageManifest.model_validate(data)
    except ValidationError as exc:
        loc, message = _first_error(exc)
        raise LinkageInputError(f"manifest does not validate ({message})", file=str(path), field=loc) from None


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise LinkageInputError("not valid UTF-8 JSON", file=str(path)) from None
    except OSError as exc:
        raise LinkageInputError(f"cannot read ({exc.strerror})", file=str(path)) from None


def load_model_manifest(path: Path, model: type[ManifestModel]) -> ManifestModel:
    """A manifest.json parsed and validated as ``model``; one-line errors naming the file and field (the
    location only: a pydantic message may quote the hostile value)."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise LinkageInputError("manifest is not a JSON object", file=str(path))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise LinkageInputError("manifest does not validate", file=str(path),
                                field=safe_location(exc.errors()[0]["loc"])) from None


_ARROW_TYPES = {"token": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
                "token_list": lambda t: (pa.types.is_list(t) or pa.types.is_large_list(t))
                and pa.types.is_string(t.value_type),
                "bloom": lambda t: pa.types.is_fixed_size_binary(t) or pa.types.is_binary(t)}


def verify_files(package: IdentifierPackage) -> None:
    """Every listed file present with the same SHA-256; tokens.parquet has exactly the declared columns."""
    folder, manifest = package.path, package.manifest
    for name, expected in sorted(manifest.files.items()):
        file = folder / name
        if not file.is_file():
            raise LinkageInputError("file listed in the manifest is missing", file=str(file))
        if sha256_file(file) != expected:
            raise ManifestMismatchError(f"{file}: SHA-256 does not match the manifest (checksum differs: file "
                                        "truncated, corrupted or changed after encoding); ask the partner to resend")
    tokens = package.tokens_path
    try:
        parquet = pq.ParquetFile(tokens)
        schema, rows = parquet.schema_arrow, parquet.metadata.num_rows
    except Exception:  # pyarrow raises several types for damaged files
        raise LinkageInputError("not a readable Parquet file", file=str(tokens)) from None
    names = list(schema.names)
    for column in KEY_COLUMNS:
        if column not in names:
            raise LinkageInputError("required column is absent", file=str(tokens), field=column)
        if not _ARROW_TYPES["token"](schema.field(column).type):
            raise LinkageInputError("column is not text", file=str(tokens), field=column)
    if len(set(names)) != len(names):
        raise LinkageInputError("a column name appears twice", file=str(tokens))
    extra = [n for n in names if n not in KEY_COLUMNS and n not in manifest.encodings.columns]
    if extra:
        shown = extra[0] if is_valid_column(extra[0]) else f"(a {len(extra[0])}-character name)"
        raise LinkageInputError(f"column {shown} is not declared in the manifest", file=str(tokens))
    for column, spec in manifest.encodings.columns.items():
        if column not in names:
            raise LinkageInputError("column declared in the manifest is absent", file=str(tokens), field=column)
        if not _ARROW_TYPES[spec.type](schema.field(column).type):
            raise LinkageInputError(f"column type differs from the manifest ({spec.type})", file=str(tokens),
                                    field=column)
    if manifest.counts.identities != rows:
        raise LinkageInputError(f"holds {rows} rows but the manifest counts {manifest.counts.identities} "
                                "identities", file=str(tokens))


def read_identifier_package(folder: str | Path, *, verify: bool = True) -> IdentifierPackage:
    """Open an identifier package: manifest validated, names checked, checksums and schema verified."""
    path = Path(folder)
    if not path.is_dir():
        raise LinkageInputError("encoded extract folder not found", file=str(path))
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise LinkageInputError("manifest.json is missing; is this an encoded extract?", file=str(path))
    package = IdentifierPackage(path, parse_manifest(load_json(manifest_path), manifest_path))
    if verify:
        verify_files(package)
    return package
