"""Checks run before any linkage work: manifests valid, files untouched, one key, one project.

A key or project mismatch would not fail loudly later: tokens made under different keys simply never
agree, so the link would quietly find nobody. Refusing up front, naming the extract, is the only safe way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pydantic import ValidationError

from linkage.audit.gate import check_release_audits
from linkage.encode.manifest import EncodedManifest
from linkage.errors import LinkageInputError, ManifestMismatchError
from linkage.io import sha256_file

SUPPORTED_MAJOR_VERSIONS = {"1"}
REQUIRED_FILES = ("tokens.parquet",)


@dataclass(frozen=True)
class Extract:
    """One checked encoded extract."""

    path: Path
    manifest: dict[str, Any]

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


def read_manifest(extract_dir: Path) -> dict[str, Any]:
    path = extract_dir / "manifest.json"
    if not extract_dir.is_dir():
        raise LinkageInputError("encoded extract folder not found", file=str(extract_dir))
    if not path.is_file():
        raise LinkageInputError("manifest.json is missing; is this an encoded extract?", file=str(extract_dir))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LinkageInputError("manifest is not valid JSON", file=str(path)) from None
    if not isinstance(manifest, dict):
        raise LinkageInputError("manifest is not a JSON object", file=str(path))
    try:
        EncodedManifest.model_validate(manifest)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LinkageInputError(f"manifest does not validate ({first['msg']})", file=str(path),
                                field=".".join(str(p) for p in first["loc"])) from None
    if str(manifest["schema_version"]).split(".")[0] not in SUPPORTED_MAJOR_VERSIONS:
        raise LinkageInputError(f"unsupported schema_version {manifest['schema_version']!r}", file=str(path),
                                field="schema_version")
    if not manifest["encodings"]["columns"]:
        raise LinkageInputError("manifest declares no encoding columns", file=str(path), field="encodings")
    return manifest


def verify_files(extract_dir: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists must be present with the same SHA-256, and tokens must be readable."""
    files = manifest["files"]
    for name in REQUIRED_FILES:
        if name not in files:
            raise LinkageInputError(f"manifest lists no checksum for {name}", file=str(extract_dir), field="files")
    for name, expected in sorted(files.items()):
        path = extract_dir / name
        if not path.is_file():
            raise LinkageInputError("file listed in the manifest is missing", file=str(path))
        if sha256_file(path) != expected:
            raise ManifestMismatchError(f"{path}: SHA-256 does not match the manifest (file truncated, "
                                        "corrupted or changed after encoding); ask the partner to resend")
    tokens = extract_dir / "tokens.parquet"
    try:
        schema = pq.read_schema(tokens)
        rows = pq.ParquetFile(tokens).metadata.num_rows
    except Exception:  # pyarrow raises several types for damaged files
        raise LinkageInputError("not a readable Parquet file", file=str(tokens)) from None
    missing = [c for c in ("record_id", "identity_id", *manifest["encodings"]["columns"]) if c not in schema.names]
    if missing:
        raise LinkageInputError("column declared in the manifest is absent", file=str(tokens), field=missing[0])
    identities = manifest["counts"].get("identities")
    if identities is not None and identities != rows:
        raise LinkageInputError(f"holds {rows} rows but the manifest counts {identities} identities",
                                file=str(tokens))


def _encoding_signature(spec: dict[str, Any], bloom: dict[str, Any] | None) -> dict[str, Any]:
    sig = {k: v for k, v in spec.items() if k in ("field", "encoding", "type")}
    if spec.get("type") == "bloom":
        sig["bloom"] = {k: (bloom or {}).get(k, spec.get(k)) for k in ("bits", "hashes", "ngram")}
    return sig


def check_extracts(extract_dirs: list[str | Path]) -> list[Extract]:
    """Validate every extract and their agreement; raise one clear error naming the first culprit."""
    if not extract_dirs:
        raise LinkageInputError("no encoded extracts given")
    extracts = []
    for d in extract_dirs:
        path = Path(d)
        manifest = read_manifest(path)
        verify_files(path, manifest)
        extracts.append(Extract(path, manifest))
    first = extracts[0]
    seen_sources: dict[str, Path] = {}
    for ex in extracts:
        if ex.manifest["kcv"] != first.manifest["kcv"]:
            raise ManifestMismatchError(
                f"{ex.path}: key check value {ex.manifest['kcv']} differs from {first.path} "
                f"({first.manifest['kcv']}); the extracts were encoded with different keys and would give no links")
        if ex.manifest["project_id"] != first.manifest["project_id"]:
            raise ManifestMismatchError(
                f"{ex.path}: project id '{ex.manifest['project_id']}' differs from {first.path} "
                f"('{first.manifest['project_id']}'); tokens of different projects never match")
        if ex.source in seen_sources:
            raise ManifestMismatchError(f"{ex.path}: source '{ex.source}' is also the source of "
                                        f"{seen_sources[ex.source]}; re-encode one with a distinct --source")
        seen_sources[ex.source] = ex.path
    check_release_audits([(ex.path, ex.manifest) for ex in extracts])  # no-op unless the caller asked for the gate
    # The same column must mean the same thing everywhere (same field, encoding, Bloom parameters).
    reference: dict[str, tuple[Path, dict[str, Any]]] = {}
    for ex in extracts:
        bloom = ex.manifest["encodings"].get("bloom")
        for col, spec in ex.columns.items():
            sig = _encoding_signature(spec, bloom)
            if col in reference and reference[col][1] != sig:
                raise ManifestMismatchError(f"{ex.path}: column '{col}' is encoded differently from "
                                            f"{reference[col][0]} ({sig} vs {reference[col][1]})")
            reference.setdefault(col, (ex.path, sig))
    return extracts
