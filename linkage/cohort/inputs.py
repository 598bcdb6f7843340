"""Reading the cohort step's inputs: the crosswalk and each partner's attribute package (never tokens).

Attribute packages are opened with the analysis private key (:mod:`linkage.contracts.attribute_package`)
and accepted only when they belong to an extract the link (or crosswalk release) manifest names: same
source, same tokens checksum, same extract id when the manifest records one, same project and KCV.
A package sealed to another key, from another extract, or altered after sealing is refused with one line.
Folders holding an unencrypted ``payload.parquet`` (made before attribute packages existed) are still
read when no private key is given, for existing fixtures; ``linkage hash`` no longer writes them.

Every payload row gets the ``person_id`` the linker gave its record, and a ``_day`` column is added
later per indicator. Input files are checksummed so the cohort manifest can name exactly what it read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from linkage.contracts.attribute_package import KIND as ATTRIBUTE_KIND
from linkage.contracts.attribute_package import (
    AttributePackageManifest,
    read_attribute_manifest,
    read_attribute_package,
)
from linkage.contracts.crosswalk_release import CrosswalkSource, read_crosswalk
from linkage.contracts.identifier_package import load_json
from linkage.errors import LinkageInputError, ManifestMismatchError
from linkage.io import sha256_file


@dataclass
class CohortInputs:
    crosswalk: pd.DataFrame
    payloads: dict[str, pd.DataFrame]
    checksums: dict[str, str] = field(default_factory=dict)
    unlinked_records: dict[str, int] = field(default_factory=dict)

    def linked_to(self, source: str) -> set[str]:
        """person_ids with at least one record from ``source`` in the crosswalk."""
        return set(self.crosswalk.loc[self.crosswalk["source"] == source, "person_id"].dropna())


def _read_parquet(path: Path, required: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise LinkageInputError("file not found", file=str(path))
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise LinkageInputError(f"not a readable Parquet file ({type(exc).__name__})", file=str(path)) from None
    for col in required:
        if col not in table.column_names:
            raise LinkageInputError("required column is missing", file=str(path), field=col)
    return table.to_pandas()


def check_package_against_link(pkg: AttributePackageManifest, folder: Path, linked: CrosswalkSource) -> None:
    """Refuse an attribute package whose extract the crosswalk's manifest does not name (one line, both sides)."""
    link_path = linked.manifest_path
    if pkg.project_id != linked.project_id:
        raise ManifestMismatchError(f"{folder}: project '{pkg.project_id}' differs from the link's "
                                    f"'{linked.project_id}' ({link_path})")
    if pkg.kcv != linked.kcv:
        raise ManifestMismatchError(f"{folder}: made under key check value {pkg.kcv}, but the link used "
                                    f"{linked.kcv} ({link_path}); not the same partners' key")
    named = linked.extracts_of(pkg.source)
    if not named:
        raise ManifestMismatchError(f"{folder}: source '{pkg.source}' is not among the extracts {link_path} "
                                    "names; refusing an attribute package that was never linked")
    for extract in named:
        if extract.tokens_sha256 == pkg.identifier_package.tokens_sha256 \
                and extract.extract_id in (None, pkg.extract_id):
            return
    theirs = ", ".join(f"{e.extract_id or '?'}/{(e.tokens_sha256 or '?')[:12]}" for e in named)
    raise ManifestMismatchError(
        f"{folder}: extract {pkg.extract_id} (tokens {pkg.identifier_package.tokens_sha256[:12]}) is not the "
        f"'{pkg.source}' extract {link_path} names ({theirs}); refusing a package from another extract")


def read_inputs(link_dir: str | Path, encoded_dirs: list[str | Path],
                private_key: X25519PrivateKey | None = None) -> CohortInputs:
    """Read the crosswalk and payloads; attach person ids to payload rows.

    ``encoded_dirs`` are attribute packages (opened with ``private_key``) or, without a key, legacy
    folders holding an unencrypted ``payload.parquet``.
    """
    link = Path(link_dir)
    cw_path = link / "crosswalk.parquet"
    crosswalk = _read_parquet(cw_path, ["person_id", "source", "record_id"])
    crosswalk = crosswalk[["person_id", "source", "record_id"]].astype("string")
    checksums = {str(cw_path): sha256_file(cw_path)}
    linked: CrosswalkSource | None = None
    if (link / "manifest.json").is_file():
        checksums[str(link / "manifest.json")] = sha256_file(link / "manifest.json")
    payloads: dict[str, pd.DataFrame] = {}
    unlinked: dict[str, int] = {}
    for d in encoded_dirs:
        d = Path(d)
        source: Any
        manifest = load_json(d / "manifest.json")
        if not isinstance(manifest, dict):
            raise LinkageInputError("manifest is not a JSON object", file=str(d / "manifest.json"))
        if manifest.get("kind") == ATTRIBUTE_KIND:
            if private_key is None:
                raise LinkageInputError("an attribute package needs the analysis private key (--analysis-key)",
                                        file=str(d))
            if linked is None:
                linked = read_crosswalk(link)
            pkg_manifest = read_attribute_manifest(d)
            check_package_against_link(pkg_manifest, d, linked)
            source = pkg_manifest.source
            if source in payloads:
                raise LinkageInputError(f"a second extract for source '{source}'", file=str(d))
            package = read_attribute_package(d, private_key)
            payload = package.table.to_pandas()
            checksums[str(d / "attributes.enc")] = package.manifest.files["attributes.enc"]
            checksums[str(d / "manifest.json")] = sha256_file(d / "manifest.json")
        else:
            source = manifest.get("source")
            if not isinstance(source, str) or not source:
                raise LinkageInputError("manifest has no 'source'", file=str(d / "manifest.json"), field="source")
            if source in payloads:
                raise LinkageInputError(f"a second extract for source '{source}'", file=str(d))
            path = d / "payload.parquet"
            if private_key is not None and not path.is_file():
                raise LinkageInputError("not an attribute package (is this an identifier package?)", file=str(d))
            payload = _read_parquet(path, ["record_id", "row_number"])
            checksums[str(path)] = sha256_file(path)
            checksums[str(d / "manifest.json")] = sha256_file(d / "manifest.json")
        payload["record_id"] = payload["record_id"].astype("string")
        ids = crosswalk.loc[crosswalk["source"] == source, ["record_id", "person_id"]].drop_duplicates("record_id")
        merged = payload.merge(ids, on="record_id", how="left")
        # The crosswalk should hold every record; any that it lacks cannot be placed and are counted.
        missing = merged["person_id"].isna()
        unlinked[source] = int(merged.loc[missing, "record_id"].nunique())
        payloads[source] = merged[~missing].reset_index(drop=True)
    return CohortInputs(crosswalk=crosswalk, payloads=payloads, checksums=checksums,
                        unlinked_records=unlinked)
