"""Privacy audit of an encoded extract, run by the partner before release (``linkage audit``).

Mounts the attacks a linkage unit could try without the key (frequency alignment of token columns,
cryptanalysis of Bloom filters) using only the encoded extract and a public-style reference frequency
list, and measures token-combination uniqueness. Given the partner's config, key and raw extract the
attacks' guesses are checked, giving verified re-identification rates; a threshold turns the audit
into a release gate. See docs/threat-model.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from linkage.audit.bloom_attack import bloom_attack
from linkage.audit.frequency import Reference, column_field, frequency_attack, load_reference, transformed_reference
from linkage.audit.uniqueness import uniqueness
from linkage.errors import LinkageInputError

__all__ = ["audit_extract", "load_reference"]


def _records(tokens: pd.DataFrame) -> pd.DataFrame:
    """One identifier set per record (its first), so a record with many aliases counts once."""
    ordinal = tokens["identity_id"].str.rsplit("-", n=1).str[1].astype(int)
    return tokens.assign(_ord=ordinal).sort_values(["record_id", "_ord"]).drop_duplicates("record_id")


def _score(values: pd.Series, guesses: dict, truth: dict | None) -> dict[str, Any]:
    present = values.dropna()
    counts = present.value_counts()
    row: dict[str, Any] = {
        "records_with_value": int(len(present)), "distinct_values": int(len(counts)),
        "top_value_share": round(float(counts.iloc[0] / len(present)), 4) if len(present) else 0.0,
        "values_guessed": len(guesses), "values_reidentified": None, "records_reidentified_share": None,
    }
    if truth is not None and len(present):
        right = {v for v, g in guesses.items() if truth.get(v) == g}
        row["values_reidentified"] = len(right)
        row["records_reidentified_share"] = round(float(present.isin(right).mean()), 4)
    return row


def audit_extract(encoded_dir: str | Path, reference: str | Path | Reference | None = None,
                  max_risk: float | None = None, *, config: str | Path | None = None, key: bytes | None = None,
                  clear_input: str | Path | None = None, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Attack one encoded extract and report per-column risk; optionally write the report to ``out_dir``.

    ``reference``: a ``field,value,weight`` CSV, a ready :data:`Reference`, or None for the shipped list.
    ``config``, ``key`` and ``clear_input`` (the raw extract) together verify the guesses; without them
    only exposure figures are reported. ``max_risk`` (0-1) sets ``passed`` to False when any column's
    verified re-identification share exceeds it.
    """
    from linkage.encode.manifest import read_manifest

    folder = Path(encoded_dir)
    manifest = read_manifest(folder).model_dump()
    verify = (config, key, clear_input)
    if any(v is not None for v in verify) and not all(v is not None for v in verify):
        raise LinkageInputError("verifying the attacks needs all of --config, --key and --input")
    if max_risk is not None and config is None:
        raise LinkageInputError("--max-risk needs --config, --key and --input: the gate uses verified rates")
    ref = reference if isinstance(reference, dict) else load_reference(reference)
    columns = manifest["encodings"]["columns"]
    bloom = manifest["encodings"].get("bloom") or {}
    records = _records(pq.read_table(folder / "tokens.parquet").to_pandas())

    plan: list[tuple[str, str, str]] = []  # (column, attack, reference field)
    for col, spec in columns.items():
        field, encoding = column_field(col)
        base = encoding.split("+")[0]
        if spec["type"] == "token" and transformed_reference(ref, field, base):
            plan.append((col, "frequency alignment", field))
        elif spec["type"] == "bloom" and transformed_reference(ref, field, "exact"):
            plan.append((col, "Bloom frequency + pattern mining", field))
    oracle = None
    if config is not None:
        from linkage.audit.verify import build_oracle

        assert key is not None and clear_input is not None
        oracle = build_oracle(config, key, clear_input, [c for c, _, _ in plan])

    rows = []
    for col, attack, field in plan:
        base = column_field(col)[1].split("+")[0]
        if columns[col]["type"] == "bloom":
            guesses = bloom_attack(records[col], transformed_reference(ref, field, "exact"),
                                   int(bloom.get("ngram", 2)), int(bloom.get("hashes", 15)))
        else:
            guesses = frequency_attack(records[col], transformed_reference(ref, field, base))
        rows.append({"column": col, "encoding": columns[col]["encoding"], "attack": attack,
                     **_score(records[col], guesses, oracle.get(col) if oracle else None)})
    risks = [r["records_reidentified_share"] for r in rows if r["records_reidentified_share"] is not None]
    risk = max(risks) if risks else None
    result: dict[str, Any] = {
        "source": manifest["source"], "records": int(len(records)), "verified": oracle is not None,
        "reference": "shipped UK name list" if reference is None else
                     ("supplied frequencies" if isinstance(reference, dict) else Path(reference).name),
        "columns": rows, "uniqueness": uniqueness(records), "risk": risk, "max_risk": max_risk,
        "passed": max_risk is None or risk is None or risk <= max_risk,
    }
    if out_dir is not None:
        from linkage.audit.report import write_report

        write_report(result, out_dir)
    return result
