"""Privacy audit of an encoded extract, run by the partner before release (``linkage audit``).

Mounts the attacks a linkage unit could try without the key (frequency alignment of token columns,
cryptanalysis of Bloom filters) using only the encoded extract and a public-style reference frequency
list, and measures token-combination uniqueness. Given the partner's config, key and raw extract the
attacks' guesses are checked, giving verified re-identification rates; a threshold turns the audit
into a release gate. See docs/threat-model.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from linkage.audit.bloom_attack import bloom_attack
from linkage.audit.frequency import (
    ENCODING_TRANSFORMS,
    Reference,
    column_field,
    frequency_attack,
    load_reference,
    transformed_reference,
)
from linkage.audit.uniqueness import uniqueness
from linkage.errors import LinkageInputError
from linkage.keys import key_check_value

__all__ = ["audit_extract", "load_reference"]

MIN_REPRODUCED = 0.95  # share of an audited column's distinct values the verification must reproduce


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


def encoding_parts(column_spec_encoding: str) -> list[str]:
    """Hardening steps named in a manifest encoding, e.g. 'bloom+fold+blip0.02' -> ['fold', 'blip0.02']."""
    return column_spec_encoding.split("+")[1:]


def propagate(tokens: pd.Series, names: pd.Series, transform: Callable[[str], str]) -> dict:
    """Token -> most common name decoded from the same rows' Bloom filters (a cross-column attack)."""
    pairs = pd.DataFrame({"token": tokens, "name": names}).dropna()
    if pairs.empty:
        return {}
    pairs["name"] = pairs["name"].map(transform)
    top = pairs.groupby(["token", "name"]).size().reset_index(name="n").sort_values(["token", "n", "name"],
                                                                                    ascending=[True, False, True])
    return dict(top.drop_duplicates("token")[["token", "name"]].itertuples(index=False, name=None))


def audit_extract(encoded_dir: str | Path, reference: str | Path | Reference | None = None,
                  max_risk: float | None = None, *, config: str | Path | None = None, key: bytes | None = None,
                  clear_input: str | Path | None = None, worst_case_reference: bool = False,
                  out_dir: str | Path | None = None, suite: bool = True,
                  reference_input: str | Path | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Attack one encoded extract and report per-column risk; optionally write the report to ``out_dir``.

    ``reference``: a ``field,value,weight`` CSV, a ready :data:`Reference`, or None for the shipped list.
    ``config``, ``key`` and ``clear_input`` (the raw extract) together verify the guesses; without them
    only exposure figures are reported. ``worst_case_reference`` replaces the reference by the name
    frequencies of ``clear_input`` itself (an attacker with perfect public figures). ``max_risk`` (0-1)
    sets ``passed`` to False when any column's verified re-identification share exceeds it.

    ``suite`` (verified audits with a population reference only) also runs the attack suite of
    :mod:`linkage.audit.suite`: frequency alignment conditioned on co-released tokens and list sizes,
    Bloom similarity clustering, row-order inference. Its population is the raw extract itself in the
    worst case, else ``reference_input``: a raw extract of an independent population in the same layout.
    """
    from linkage.encode.manifest import read_manifest

    folder = Path(encoded_dir)
    manifest = read_manifest(folder).model_dump()
    verify = (config, key, clear_input)
    if any(v is not None for v in verify) and not all(v is not None for v in verify):
        raise LinkageInputError("verifying the attacks needs all of --config, --key and --input")
    if max_risk is not None and config is None:
        raise LinkageInputError("--max-risk needs --config, --key and --input: the gate uses verified rates")
    columns = manifest["encodings"]["columns"]
    scan = None
    if config is not None:
        from linkage.audit.suite import name_columns
        from linkage.audit.verify import scan_clear_extract

        assert key is not None and clear_input is not None
        if key_check_value(key) != manifest["kcv"]:
            raise LinkageInputError(f"key check value differs from the manifest's ({manifest['kcv']}): "
                                    "not the key this extract was encoded with", file=str(folder))
        # Every name column any attack below scores (the suite's token lists too), from one read.
        audited = sorted({c for c, spec in columns.items() if spec["type"] in ("token", "bloom")} |
                         set(name_columns(columns)))
        scan = scan_clear_extract(config, key, clear_input, audited, progress=progress,
                                  population=worst_case_reference)
    if worst_case_reference:
        if scan is None:
            raise LinkageInputError("the worst-case reference needs --config and --input")
        reference = scan.reference
    ref = reference if isinstance(reference, dict) else load_reference(reference)
    bloom = manifest["encodings"].get("bloom") or {}
    from linkage.audit.suite import first_identities

    records = first_identities(folder / "tokens.parquet", columns, reset_index=False)

    plan: list[tuple[str, str, str]] = []  # (column, attack, reference field)
    for col, spec in columns.items():
        field, encoding = column_field(col)
        base = encoding.split("+")[0]
        if spec["type"] == "token" and transformed_reference(ref, field, base):
            plan.append((col, "frequency alignment", field))
        elif spec["type"] == "bloom" and transformed_reference(ref, field, "exact"):
            plan.append((col, "Bloom frequency + pattern mining", field))
    oracle = scan.oracle if scan is not None else None
    if oracle is not None:
        for col, _, _ in plan:
            # Guesses can only be checked if config, key, raw extract and encoder reproduce this extract.
            distinct = set(records[col].dropna().tolist())
            if distinct and len(distinct & oracle[col].keys()) < MIN_REPRODUCED * len(distinct):
                raise LinkageInputError("the config and raw extract given do not reproduce this column "
                                        "(other input, other config or an older encoder version)",
                                        file=str(folder), field=col)

    # Bloom columns first: names decoded from a row's filter also give away that row's tokens.
    plan.sort(key=lambda item: columns[item[0]]["type"] != "bloom")
    decoded: dict[str, pd.Series] = {}
    rows = []
    for k, (col, attack, field) in enumerate(plan, start=1):
        if progress is not None:
            progress(f"per-column attacks: column {k} of {len(plan)} ({col})")
        base = column_field(col)[1].split("+")[0]
        if columns[col]["type"] == "bloom":
            hardening = set(encoding_parts(columns[col]["encoding"]))
            guesses = bloom_attack(records[col], transformed_reference(ref, field, "exact"),
                                   int(bloom.get("ngram", 2)), int(bloom.get("hashes", 15)),
                                   structured=not ({"fold", "balanced"} & hardening))
            decoded[field] = records[col].map(lambda f, g=guesses: g.get(f) if f is not None else None)
        else:
            guesses = frequency_attack(records[col], transformed_reference(ref, field, base))
            if field in decoded:
                guesses.update(propagate(records[col], decoded[field], ENCODING_TRANSFORMS[base]))
                attack += " + Bloom decoding of the same rows"
        rows.append({"column": col, "encoding": columns[col]["encoding"], "attack": attack,
                     **_score(records[col], guesses, oracle.get(col) if oracle else None)})
    rows.sort(key=lambda r: r["column"])
    risks = [r["records_reidentified_share"] for r in rows if r["records_reidentified_share"] is not None]
    attacks: list[dict[str, Any]] = []
    if suite and oracle is not None and (worst_case_reference or reference_input is not None):
        from linkage.audit.population import population_from_input
        from linkage.audit.suite import Part, risk_of, run_suite

        assert config is not None and scan is not None
        if worst_case_reference:
            population = scan.population
        else:
            assert reference_input is not None
            population = population_from_input(config, reference_input)
        attacks = run_suite([Part(manifest["source"], records.reset_index(drop=True), columns, bloom, oracle)],
                            population, progress=progress)
        risks += [risk_of(a) for a in attacks]
    risk = max(risks) if risks else None
    result: dict[str, Any] = {
        "source": manifest["source"], "records": int(len(records)), "verified": oracle is not None,
        "reference": "worst case: the extract's own name frequencies" if worst_case_reference else
                     "shipped UK name list" if reference is None else
                     ("supplied frequencies" if isinstance(reference, dict) else Path(reference).name),
        "columns": rows, "attacks": attacks, "uniqueness": uniqueness(records), "risk": risk, "max_risk": max_risk,
        "passed": max_risk is None or risk is None or risk <= max_risk,
    }
    if out_dir is not None:
        from linkage.audit.report import write_report

        write_report(result, out_dir)
    return result
