"""The release gate: ``linkage hash`` publishes only an audited extract, ``linkage link`` only links those.

At the partner, :func:`encode_with_release_gate` (behind ``linkage hash`` and ``linkage.encode_extract``)
encodes the extract into a private staging folder, runs the worst-case audit (attack suite included,
:func:`audit_on_hash`) on it and records the verdict in its ``manifest.json`` under ``release_audit``. Only
an extract whose audit passed is moved into place (with its attribute package); a failed audit raises
:class:`ReleaseAuditFailed` (exit 4) and leaves nothing behind but the optional audit report. With
``--no-audit`` (``audit=False`` in Python; closed test environments) :func:`record_no_audit` records that
no audit ran, and why. Only rates and the verdict are recorded, never a name, token or filter.

At the linkage unit, :func:`check_release_audits` (called by :func:`linkage.link.job.link_extracts`, so
by ``linkage link``, ``linkage.link_extracts``, the demo and a Spark driver script alike) refuses any
extract whose manifest holds no passing audit (none recorded, ``--no-audit``, or a failed audit from an
older release of the tool) with :class:`UnauditedExtractError`. ``allow_unaudited=True`` (the command's
``--allow-unaudited``) or the environment variable ``LINKAGE_ALLOW_UNAUDITED=1`` (test and closed
environments) overrides it; each extract let through is then named on stderr.
The recorded verdict is the partner's statement, not a proof: the linkage unit cannot re-run the audit
without the key, so the gate guards against mistakes and forgotten audits, not against a dishonest partner.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from linkage import __version__
from linkage.errors import LinkageInputError, OutputError
from linkage.io import check_output_dir, publish_dir, staging_dir

RECORD = "release_audit"
DEFAULT_MAX_RISK = 0.10  # worst-case attacker; docs/threat-model.md §6
ALLOW_ENV = "LINKAGE_ALLOW_UNAUDITED"
LIBRARY_NO_AUDIT = "linkage.encode_extract(audit=False)"  # the reason recorded by the Python API's opt-out


class ReleaseAuditFailed(LinkageInputError):
    """The audit of a freshly encoded extract found a re-identification risk above the threshold; nothing
    was published."""

    exit_code = 4


class UnauditedExtractError(LinkageInputError):
    """An extract to be linked has no passing release audit in its manifest, and no override was given."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def write_record(encoded_dir: str | Path, record: dict[str, Any]) -> None:
    """Add (or replace) the release-audit record in an extract's manifest.json, atomically."""
    path = Path(encoded_dir) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest[RECORD] = record
    tmp = path.with_name(".manifest.json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def audit_on_hash(encoded_dir: str | Path, config: str | Path, key: bytes, clear_input: str | Path,
                  max_risk: float = DEFAULT_MAX_RISK, report_dir: str | Path | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Worst-case audit of a just-encoded extract; the verdict goes into its manifest. Returns the record.

    The clear extract is read once more (not three times); ``progress`` gets a line per chunk and attack."""
    from linkage.audit import audit_extract

    result = audit_extract(encoded_dir, max_risk=max_risk, config=config, key=key, clear_input=clear_input,
                           worst_case_reference=True, out_dir=report_dir, progress=progress)
    scored = [(r.get("records_reidentified_share") or 0.0, r["column"], r["attack"])
              for r in result["columns"]] + [(_gate_risk(a), a["column"], a["attack"]) for a in result["attacks"]]
    top = max(scored, default=(0.0, "", ""))
    record = {"status": "passed" if result["passed"] else "failed", "risk": result["risk"], "max_risk": max_risk,
              "reference": result["reference"], "strongest_attack": f"{top[2]} on {top[1]}" if top[1] else None,
              "tool_version": __version__, "audited_at": _now()}
    write_record(encoded_dir, record)
    return record


def _gate_risk(row: dict[str, Any]) -> float:
    from linkage.audit.suite import risk_of

    return risk_of(row)


def record_no_audit(encoded_dir: str | Path, reason: str) -> dict[str, Any]:
    """Record that the partner released this extract without an audit (``linkage hash --no-audit``)."""
    record = {"status": "not audited", "reason": reason, "tool_version": __version__, "recorded_at": _now()}
    write_record(encoded_dir, record)
    return record


def stderr_audit_progress() -> Callable[[str], None]:
    """A ``progress`` callback for :func:`encode_with_release_gate` that prints each audit phase to stderr with
    the seconds since it was made (the audit takes minutes on a large extract: say where it is)."""
    import sys
    import time

    started = time.perf_counter()

    def progress(line: str) -> None:
        print(f"[release audit {time.perf_counter() - started:6.0f}s] {line}", file=sys.stderr, flush=True)
    return progress


def warn_weak_encodings(config_path: Path) -> Callable[[dict[str, Any]], None]:
    """An ``on_encoded`` callback that names, on stderr, each weak setting of the partner config: printed after
    encoding and before the audit, so a failed audit's output points at the settings to change."""
    import sys

    from linkage.config import load_partner_config
    from linkage.encode.hardening import weak_encoding_reasons

    def warn(_: dict[str, Any]) -> None:
        for reason in weak_encoding_reasons(load_partner_config(config_path)):
            print(f"warning: weak encodings: {reason}", file=sys.stderr)
    return warn


def encode_with_release_gate(config: str | Path, key: bytes, source_input: Any, out_dir: str | Path, *,
                             audit: bool = True, max_risk: float = DEFAULT_MAX_RISK,
                             report_dir: str | Path | None = None, no_audit_reason: str = "linkage hash --no-audit",
                             progress: Callable[[str], None] | None = None,
                             on_encoded: Callable[[dict[str, Any]], None] | None = None,
                             **encode_options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Encode an extract and publish it only if its release audit passes. Returns (manifest, audit record).

    The identifier package (and the attribute package, with ``analysis_public_key`` among
    ``encode_options``, which go to :func:`linkage.encode.encode_extract`) is written to staging folders
    beside its destination, audited there, and renamed into place only after the verdict is recorded. A
    failed audit raises :class:`ReleaseAuditFailed` (exit 4) and removes both packages: nothing that looks
    like a releasable extract is left, only the audit report in ``report_dir`` if one was asked for. With
    ``audit=False`` the extract is published with a "not audited" record (``no_audit_reason``), which
    ``linkage link`` refuses unless overridden. ``source_input`` is a file path or a database source; the
    audit re-reads the clear extract, so it needs a file. ``on_encoded`` is called with the (staged)
    manifest once encoding succeeded, before the audit (the command prints its weak-setting warnings there).
    """
    from linkage.encode import encode_extract
    from linkage.encode.extract import attributes_dir_for

    if audit and not isinstance(source_input, str | Path):
        raise LinkageInputError("the release audit re-reads the clear extract and needs a file; export the table "
                                "and hash the file, or pass --no-audit and audit an export with `linkage audit`")
    out = Path(out_dir)
    given = encode_options.pop("attributes_out", None)
    attributes: Path | None = None
    if encode_options.get("analysis_public_key") is not None:
        attributes = Path(given) if given is not None else attributes_dir_for(out)
    if attributes is not None:
        a, o = attributes.resolve(), out.resolve()
        if a == o or o in a.parents or a in o.parents:
            raise OutputError(f"{attributes}: the attribute package folder must be neither --out nor inside it "
                              "(nor contain it): they go to different roles")
    if report_dir is not None:
        check_output_dir(report_dir)  # refused now, not after minutes of audit
    staged = staging_dir(out)
    staged_attributes = staging_dir(attributes) if attributes is not None else None
    try:  # on any error (a failed audit too) both staging folders are removed
        manifest = encode_extract(config, key, source_input, staged, attributes_out=staged_attributes,
                                  **encode_options)
        if on_encoded is not None:
            on_encoded(manifest)
        if not audit:
            record = record_no_audit(staged, no_audit_reason)
        else:
            record = audit_on_hash(staged, config, key, Path(source_input), max_risk=max_risk, report_dir=report_dir,
                                   progress=progress)
            if record["status"] != "passed":
                report = f"; audit report: {report_dir}" if report_dir is not None else ""
                raise ReleaseAuditFailed(
                    f"release audit FAILED: {record['strongest_attack'] or 'the audit'} "
                    f"{reidentified_text(record['risk'], max_risk)}; nothing was written{report}; encode with the "
                    "shipped partner config's encodings (docs/threat-model.md §3)", file=str(out))
        # Identifiers first, then attributes; if the second rename fails the first is taken back, so neither
        # package is ever published without the other.
        publish_dir(staged, out)
        if staged_attributes is not None and attributes is not None:
            try:
                publish_dir(staged_attributes, attributes)
            except BaseException:
                shutil.rmtree(out, ignore_errors=True)
                raise
    except BaseException:
        for folder in (staged, staged_attributes):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        raise
    manifest = {**manifest, RECORD: record}
    if attributes is not None and manifest.get("attribute_package") is not None:
        manifest["attribute_package"] = {**manifest["attribute_package"], "path": str(attributes)}
    return manifest, record


def reidentified_text(risk: Any, threshold: Any = None) -> str:
    """The one wording of an audit's result: "re-identifies x% of records in the worst case (threshold y%)".

    Either number may be missing from an old or hand-edited manifest: the risk is then "an unknown share" and
    the threshold is left out."""
    shown = f"{100 * risk:.1f}%" if isinstance(risk, int | float) else "an unknown share"
    limit = f" (threshold {100 * threshold:.1f}%)" if isinstance(threshold, int | float) else ""
    return f"re-identifies {shown} of records in the worst case{limit}"


def audit_problem(manifest: dict[str, Any]) -> str | None:
    """Why this manifest does not show a release audit the linkage unit accepts (None: it does).

    Refused: no audit recorded, an extract encoded with ``--no-audit``, and an audit that did not pass
    (``linkage hash`` no longer publishes those, but an older tool did, with a warning).
    """
    record = manifest.get(RECORD)
    if not isinstance(record, dict):
        return "its manifest records no release audit (encode with `linkage hash`, which audits its output)"
    status = record.get("status")
    risk, limit = record.get("risk"), record.get("max_risk")
    if status == "passed":
        # The partner chose the threshold: a "pass" at a lenient one (max_risk 1.0 passes anything) is not the
        # project's pass. The linkage unit holds every extract to DEFAULT_MAX_RISK.
        if not isinstance(risk, int | float) or not isinstance(limit, int | float):
            return "its release audit record gives no risk or threshold"
        if risk > DEFAULT_MAX_RISK or limit > DEFAULT_MAX_RISK:
            return (f"its release audit passed only at a threshold of {100 * limit:.1f}% (the strongest attack "
                    f"{reidentified_text(risk)}); the linkage unit accepts at most {100 * DEFAULT_MAX_RISK:.0f}%")
        return None
    if status == "failed":
        return f"its release audit failed: the strongest attack {reidentified_text(risk, limit)}"
    if status == "not audited":
        return "it was encoded with --no-audit (audit=False in Python)"
    return "its release audit record is not understood"


def check_release_audits(extracts: list[tuple[Path, dict[str, Any]]], *,
                          allow_unaudited: bool = False) -> dict[Path, str]:
    """Refuse the first extract without a passing audit (:class:`UnauditedExtractError`), naming it.

    Overridden (``allow_unaudited=True``, the command's ``--allow-unaudited``, or ``LINKAGE_ALLOW_UNAUDITED=1``),
    each such extract is named on stderr instead, with the reason, and linked. Returns, per overridden extract,
    the override used, for the link manifest (so the override is on record, not only on a terminal)."""
    import sys

    from_env = os.environ.get(ALLOW_ENV) == "1"
    overridden: dict[Path, str] = {}
    for path, manifest in extracts:
        problem = audit_problem(manifest)
        if problem is None:
            continue
        if allow_unaudited or from_env:
            how = "--allow-unaudited" if allow_unaudited else f"{ALLOW_ENV}=1"
            print(f"warning: {path}: linked although {problem} ({how})", file=sys.stderr)
            overridden[path] = how
            continue
        raise UnauditedExtractError(f"refusing to link: {problem}; ask the partner for an extract whose release "
                                    "audit passed, or override with --allow-unaudited (allow_unaudited=True in "
                                    "Python; the override is reported)", file=str(path))
    return overridden
