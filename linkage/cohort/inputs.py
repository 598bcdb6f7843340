"""Reading the cohort step's inputs: the crosswalk and each partner's payload (never tokens).

Every payload row gets the ``person_id`` the linker gave its record, and a ``_day`` column is added
later per indicator. Input files are checksummed so the cohort manifest can name exactly what it read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from linkage.errors import LinkageInputError
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


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise LinkageInputError("file not found", file=str(path))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LinkageInputError("not valid JSON", file=str(path)) from None


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


def read_inputs(link_dir: str | Path, encoded_dirs: list[str | Path]) -> CohortInputs:
    """Read the crosswalk and payloads; attach person ids to payload rows."""
    link = Path(link_dir)
    cw_path = link / "crosswalk.parquet"
    crosswalk = _read_parquet(cw_path, ["person_id", "source", "record_id"])
    crosswalk = crosswalk[["person_id", "source", "record_id"]].astype("string")
    checksums = {str(cw_path): sha256_file(cw_path)}
    if (link / "manifest.json").is_file():
        checksums[str(link / "manifest.json")] = sha256_file(link / "manifest.json")
    payloads: dict[str, pd.DataFrame] = {}
    unlinked: dict[str, int] = {}
    for d in encoded_dirs:
        d = Path(d)
        manifest = _read_json(d / "manifest.json")
        source = manifest.get("source")
        if not isinstance(source, str) or not source:
            raise LinkageInputError("manifest has no 'source'", file=str(d / "manifest.json"), field="source")
        if source in payloads:
            raise LinkageInputError(f"a second extract for source '{source}'", file=str(d))
        path = d / "payload.parquet"
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
