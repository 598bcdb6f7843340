"""The release gate: `linkage hash` audits its own output and records the verdict (enforced with
--max-risk); `linkage link` refuses an extract that was never audited unless overridden, and warns about
one whose audit did not pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkage import keys
from linkage.audit.gate import REQUIRE_AUDIT, audit_problem
from linkage.cli import app
from linkage.errors import LinkageInputError
from linkage.link.checks import check_extracts
from linkage.synth import generate_extracts

REPO = Path(__file__).resolve().parents[1]
WEAK = REPO / "configs" / "partners" / "unhardened" / "police.yaml"
HARDENED = REPO / "configs" / "partners" / "hardened" / "police.yaml"


@pytest.fixture(scope="module")
def hashed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("gate")
    generate_extracts(2500, 11, root / "raw", quiet=True)
    keys.write_key_file(root / "k.key", bytes(range(32)))
    runner = CliRunner()
    out = {"root": root}
    for name, cfg, extra in (("weak", WEAK, ["--max-risk", "0.1"]), ("weak_recorded", WEAK, []),
                             ("hardened", HARDENED, []), ("skipped", HARDENED, ["--no-audit"])):
        result = runner.invoke(app, ["hash", "--config", str(cfg), "--key", str(root / "k.key"), "--input",
                                     str(root / "raw" / "police.csv"), "--out", str(root / name), "--quiet", *extra])
        out[name] = (result, json.loads((root / name / "manifest.json").read_text()))
    return out


def test_hash_blocks_a_weak_extract_and_records_why(hashed):
    result, manifest = hashed["weak"]
    assert result.exit_code == 4, result.output
    assert "release audit FAILED" in result.output and "warning: weak encodings" in result.output
    record = manifest["release_audit"]
    assert record["status"] == "failed" and record["risk"] > 0.1 and record["max_risk"] == 0.1


def test_without_max_risk_a_failing_audit_is_recorded_and_warned_not_enforced(hashed):
    result, manifest = hashed["weak_recorded"]
    assert result.exit_code == 0, result.output
    assert "warning: release audit" in result.output and "--max-risk enforces" in result.output
    assert manifest["release_audit"]["status"] == "failed"


def test_hash_passes_the_hardened_profile(hashed):
    result, manifest = hashed["hardened"]
    assert result.exit_code == 0, result.output
    assert "release audit passed" in result.output and "warning" not in result.output
    assert manifest["release_audit"]["status"] == "passed" and manifest["release_audit"]["risk"] <= 0.1
    assert audit_problem(manifest) is None


def test_no_audit_is_recorded(hashed):
    result, manifest = hashed["skipped"]
    assert result.exit_code == 0 and "--no-audit" in result.output
    assert manifest["release_audit"]["status"] == "not audited"
    assert "--no-audit" in audit_problem(manifest)


def test_link_refuses_extracts_without_a_passing_audit(hashed, monkeypatch):
    monkeypatch.delenv("LINKAGE_ALLOW_UNAUDITED", raising=False)
    root = hashed["root"]
    token = REQUIRE_AUDIT.set(True)
    try:
        with pytest.raises(LinkageInputError, match="refusing to link"):
            check_extracts([root / "skipped"])
        assert len(check_extracts([root / "hardened"])) == 1
        assert len(check_extracts([root / "weak"])) == 1  # audited, did not pass: linked with a warning
    finally:
        REQUIRE_AUDIT.reset(token)
    assert len(check_extracts([root / "skipped"])) == 1  # the library call without the gate (tests, benchmarks)
    refused = CliRunner().invoke(app, ["link", str(root / "skipped"), "--out", str(root / "link")])
    assert refused.exit_code == 2 and "refusing to link" in refused.output and "--no-audit" in refused.output
    assert not (root / "link").exists()


def test_the_gate_reads_the_clear_extract_once_for_everything_it_needs(hashed):
    # One pass gives what three separate reads gave: the oracle, the worst-case population and the worst-case
    # name reference (the gate used to read the clear extract once for each).
    import pandas as pd

    from linkage.audit.population import population_from_input
    from linkage.audit.verify import reference_from_input, scan_clear_extract

    raw, lines = hashed["root"] / "raw" / "police.csv", []
    columns = ["surname__exact", "full_name__near_dob", "given_name__bloom"]
    scan = scan_clear_extract(HARDENED, bytes(range(32)), raw, columns, progress=lines.append)
    pd.testing.assert_frame_equal(scan.population, population_from_input(HARDENED, raw))
    assert scan.reference == reference_from_input(HARDENED, raw)
    assert all(scan.oracle[c] for c in columns)  # every column scored, token lists included
    tokens = pd.read_parquet(hashed["root"] / "hardened" / "tokens.parquet")
    firsts = {v[0] for v in tokens["full_name__near_dob"].dropna() if len(v)}
    assert firsts <= scan.oracle["full_name__near_dob"].keys()  # a list is scored by its first token
    assert lines and lines[-1].startswith(f"read {scan.rows:,} rows")
