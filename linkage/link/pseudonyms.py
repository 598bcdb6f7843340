"""Per-release crosswalks: what the linkage unit hands the analysis environment instead of its own ids.

The link folder's ``person_id`` is the linkage unit's internal id and never leaves it. For each release,
:func:`export_crosswalk` replaces it with an HMAC under a release key the linkage unit keeps (one key per
release, made with ``linkage keygen``), so two releases' person ids cannot be joined without the linkage
unit's consent. The release folder holds ``crosswalk.parquet`` (``person_id``, ``source``, ``record_id``)
and ``manifest.json`` naming the identifier packages that were linked (source, extract id, tokens
checksum), so the analysis step can refuse attribute packages from any other extract.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from linkage.contracts.crosswalk_release import CROSSWALK_COLUMNS, CROSSWALK_RELEASE_KIND, CrosswalkReleaseManifest
from linkage.contracts.identifier_package import read_identifier_package
from linkage.contracts.link_output import LinkInput, LinkOutputManifest, read_link_output
from linkage.errors import LinkageInputError
from linkage.io import atomic_output_dir, sha256_file, write_json
from linkage.keys import key_check_value, release_person_id


def _extract_id(item: LinkInput) -> str | None:
    """The input's extract id: from the link manifest, else from the identifier package it names.

    The identifier package is consulted only if it is still where it was linked from and its tokens
    checksum is the one the link used.
    """
    if item.extract_id:
        return item.extract_id
    if not item.path:
        return None
    try:
        package = read_identifier_package(item.path, verify=False)
    except LinkageInputError:
        return None
    if package.manifest.files.get("tokens.parquet") != item.files.get("tokens.parquet"):
        return None
    return package.manifest.extract_id


def released_inputs(manifest: LinkOutputManifest) -> list[dict[str, Any]]:
    """What the analysis step needs to know of each linked identifier package (no paths, no counts)."""
    return [{"source": item.source, "extract_id": _extract_id(item),
             "tokens_sha256": item.files.get("tokens.parquet")} for item in manifest.inputs]


def export_crosswalk(link_dir: str | Path, release_key: bytes, out_dir: str | Path, *,
                     release_id: str | None = None) -> dict[str, Any]:
    """Write a release of the crosswalk with per-release person ids; returns the release manifest."""
    link_output = read_link_output(link_dir)  # manifest validated, crosswalk checksum and columns checked
    link, manifest = link_output.path, link_output.manifest
    path = link_output.crosswalk_path
    try:
        table = pq.read_table(path, columns=list(CROSSWALK_COLUMNS))
    except Exception as exc:  # pyarrow raises several types for a damaged file or a missing column
        raise LinkageInputError(f"not a readable crosswalk ({type(exc).__name__})", file=str(path)) from None
    internal = pc.cast(table.column("person_id"), pa.string()).combine_chunks()
    encoded = pc.dictionary_encode(internal)
    released = pa.array([release_person_id(release_key, p) for p in encoded.dictionary.to_pylist()], pa.string())
    person_ids = released.take(encoded.indices)
    out_table = pa.table({"person_id": person_ids,
                          "source": pc.cast(table.column("source"), pa.string()),
                          "record_id": pc.cast(table.column("record_id"), pa.string())})
    # Sorted by the new ids, so row order carries nothing of the internal ids' order.
    out_table = out_table.sort_by([("person_id", "ascending"), ("source", "ascending"), ("record_id", "ascending")])
    with atomic_output_dir(out_dir) as tmp:
        pq.write_table(out_table, tmp / "crosswalk.parquet", compression="zstd")
        release = {
            "schema_version": "1.0",
            "kind": CROSSWALK_RELEASE_KIND,
            "release_id": release_id or key_check_value(release_key),
            "release_key_check_value": key_check_value(release_key),
            "project_id": manifest.project_id,
            "kcv": manifest.kcv,
            "inputs": released_inputs(manifest),
            "link_manifest_sha256": sha256_file(link / "manifest.json"),
            "counts": {"records": out_table.num_rows, "persons": len(released)},
            "files": {"crosswalk.parquet": sha256_file(tmp / "crosswalk.parquet")},
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        CrosswalkReleaseManifest.model_validate(release)  # what we hand over must meet our own contract
        write_json(tmp / "manifest.json", release)
    return release
