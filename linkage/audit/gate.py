"""The release gate: ``linkage hash`` audits its own output, ``linkage link`` refuses unaudited extracts.

At the partner, :func:`audit_on_hash` runs the worst-case audit (attack suite included) on the extract
just encoded and records the verdict in the extract's ``manifest.json`` under ``release_audit``; with
``--no-audit`` :func:`record_no_audit` records that no audit ran, and why. Only rates and the verdict
are recorded, never a name, token or filter.

At the linkage unit, :func:`check_release_audits` (called from :func:`linkage.link.checks.check_extracts`)
refuses any extract whose manifest holds no passing audit, when the caller asked for the gate: the
``linkage link`` command does unless ``--allow-unaudited`` is given, which it reports on stderr. The
environment variable ``LINKAGE_ALLOW_UNAUDITED=1`` overrides it as well (test and closed environments).
The recorded verdict is the partner's statement, not a proof: the linkage unit cannot re-run the audit
without the key, so the gate guards against mistakes and forgotten audits, not against a dishonest partner.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from linkage import __version__
from linkage.errors import LinkageInputError

RECORD = "release_audit"
DEFAULT_MAX_RISK = 0.10  # worst-case attacker; docs/threat-model.md §6
ALLOW_ENV = "LINKAGE_ALLOW_UNAUDITED"
REQUIRE_AUDIT: contextvars.ContextVar[bool] = contextvars.ContextVar("require_release_audit", default=False)


class ReleaseAuditFailed(LinkageInputError):
    """The audit of a freshly encoded extract found a re-identification risk above the threshold."""

    exit_code = 4


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


def audit_problem(manifest: dict[str, Any]) -> str | None:
    """Why this manifest does not show a release audit the linkage unit accepts (None: it does).

    An extract with no audit, or encoded with ``--no-audit``, is refused. A recorded audit that did not
    pass is accepted with a warning (:func:`audit_warning`): the shipped default profile favours accuracy
    and does not pass the worst-case audit; a partner who wants the audit enforced passes ``--max-risk``
    to ``linkage hash``, which then refuses to finish.
    """
    record = manifest.get(RECORD)
    if not isinstance(record, dict):
        return "its manifest records no release audit (encode with `linkage hash`, which audits its output)"
    if record.get("status") in ("passed", "failed"):
        return None
    if record.get("status") == "not audited":
        return "it was encoded with --no-audit"
    return "its release audit record is not understood"


def audit_warning(manifest: dict[str, Any]) -> str | None:
    """A one-line warning for an extract whose recorded audit did not pass (None otherwise)."""
    record = manifest.get(RECORD)
    if isinstance(record, dict) and record.get("status") == "failed":
        risk = record.get("risk")
        shown = f"{100 * risk:.1f}%" if isinstance(risk, int | float) else "an unknown share"
        return (f"{manifest.get('source')}: the partner's release audit did not pass (worst case re-identifies "
                f"{shown} of records)")
    return None


def check_release_audits(extracts: list[tuple[Path, dict[str, Any]]]) -> None:
    """Refuse the first extract without a passing audit, when the gate is on (see the module docstring)."""
    if not REQUIRE_AUDIT.get() or os.environ.get(ALLOW_ENV) == "1":
        return
    import sys

    for path, manifest in extracts:
        warning = audit_warning(manifest)
        if warning is not None:
            print(f"warning: {warning}", file=sys.stderr)
        problem = audit_problem(manifest)
        if problem is not None:
            raise LinkageInputError(f"refusing to link: {problem}; ask the partner for an audited extract, or "
                                    "pass --allow-unaudited to override (the override is reported)",
                                    file=str(path))
