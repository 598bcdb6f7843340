"""The release gate: `linkage hash` and `linkage.encode_extract` audit their own output and publish it only
if the audit passes (exit 4 / ReleaseAuditFailed, and nothing written otherwise); `linkage link` refuses an
extract whose recorded audit is missing, skipped (--no-audit, audit=False) or failed, unless overridden, and
names each extract it lets through."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import linkage
import linkage.link
from linkage import keys
from linkage.audit.gate import (
    LIBRARY_NO_AUDIT,
    ReleaseAuditFailed,
    UnauditedExtractError,
    audit_problem,
    check_release_audits,
    reidentified_text,
    write_record,
)
from linkage.cli import app
from linkage.encode import encode_extract
from linkage.link.checks import check_extracts
from linkage.synth import generate_extracts

REPO = Path(__file__).resolve().parents[1]
WEAK = REPO / "configs" / "partners" / "unhardened" / "police.yaml"  # the old accuracy profile, NOT FOR RELEASE
SHIPPED = REPO / "configs" / "partners" / "police.yaml"               # the shipped (hardened) default


@pytest.fixture(scope="module")
def hashed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("gate")
    # 2,500 people for the shipped profile, whose audit must pass (a small extract's risk can near 10%); 400 for
    # what does not depend on size: the unhardened profile, which fails the audit at any size (100% of initials),
    # and the tests that link, which do so after the gate has decided and check only that the link ran and the
    # override is named and recorded (each 2,500-person link took 16-21 s, each audit of it ~20 s on two cores).
    generate_extracts(2500, 11, root / "raw", quiet=True)
    generate_extracts(400, 11, root / "raw-small", quiet=True)
    keys.write_key_file(root / "k.key", bytes(range(32)))
    keys.write_analysis_keypair(root / "analysis.key", root / "analysis.pub")
    runner = CliRunner()
    out = {"root": root}
    for name, cfg, raw, extra in (
            ("weak", WEAK, "raw-small",
             ["--analysis-key", str(root / "analysis.pub"), "--audit-report", str(root / "weak-report")]),
            ("shipped", SHIPPED, "raw", []), ("skipped", SHIPPED, "raw", ["--no-audit"])):
        result = runner.invoke(app, ["hash", "--config", str(cfg), "--key", str(root / "k.key"), "--input",
                                     str(root / raw / "police.csv"), "--out", str(root / name), "--quiet", *extra])
        manifest = root / name / "manifest.json"
        out[name] = (result, json.loads(manifest.read_text()) if manifest.is_file() else None)
    encode_extract(SHIPPED, bytes(range(32)), root / "raw-small" / "police.csv", root / "small", quiet=True)
    return out


def test_hash_blocks_a_weak_extract_by_default_and_leaves_nothing_releasable(hashed):
    result, manifest = hashed["weak"]
    root = hashed["root"]
    assert result.exit_code == 4, result.output
    assert "release audit FAILED" in result.output and "nothing was written" in result.output
    assert "threshold 10.0%" in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1
    # The profile's weak settings are named before the audit runs.
    assert result.output.count("warning: weak encodings") >= 3
    # Neither package nor a staging folder is left; only the audit report that was asked for.
    assert manifest is None and not (root / "weak").exists() and not (root / "weak-attributes").exists()
    assert not [p.name for p in root.iterdir() if p.name.startswith(".")]
    report = json.loads((root / "weak-report" / "audit.json").read_text())
    assert report["passed"] is False and report["risk"] > 0.1


def test_hash_passes_the_shipped_profile(hashed):
    result, manifest = hashed["shipped"]
    assert result.exit_code == 0, result.output
    assert "release audit passed" in result.output and "warning" not in result.output
    assert manifest["release_audit"]["status"] == "passed" and manifest["release_audit"]["risk"] <= 0.1
    assert manifest["release_audit"]["max_risk"] == 0.1
    assert audit_problem(manifest) is None


def test_no_audit_is_recorded(hashed):
    result, manifest = hashed["skipped"]
    assert result.exit_code == 0 and "--no-audit" in result.output
    assert manifest["release_audit"]["status"] == "not audited"
    assert "--no-audit" in audit_problem(manifest)


def test_unhardened_profile_with_no_audit_is_published_with_warnings_and_refused_by_link(hashed, tmp_path):
    root = hashed["root"]
    result = CliRunner().invoke(app, ["hash", "--config", "unhardened/police", "--key", str(root / "k.key"),
                                      "--input", str(root / "raw-small" / "police.csv"), "--out", str(tmp_path / "e"),
                                      "--quiet", "--no-audit"])
    assert result.exit_code == 0, result.output
    assert result.output.count("warning: weak encodings") >= 3 and "--no-audit" in result.output
    manifest = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert "--no-audit" in audit_problem(manifest)


@pytest.fixture
def failed_extract(hashed, tmp_path) -> Path:
    """An extract whose manifest records a failed audit (what `linkage hash` published, with a warning,
    before the gate became real, and what a hand-edited or older tool's extract may carry)."""
    path = tmp_path / "failed"
    shutil.copytree(hashed["root"] / "small", path)
    write_record(path, {"status": "failed", "risk": 0.47, "max_risk": 0.1, "strongest_attack": "x on surname__exact",
                        "reference": "worst case", "tool_version": "0.0.9", "audited_at": "2026-12-01T00:00:00+00:00"})
    return path


def test_the_gate_refuses_extracts_without_a_passing_audit(hashed, failed_extract, monkeypatch, capsys):
    monkeypatch.delenv("LINKAGE_ALLOW_UNAUDITED", raising=False)  # conftest sets it for the whole session
    root = hashed["root"]

    def gate(path: Path, **kwargs) -> None:
        check_release_audits([(path, json.loads((path / "manifest.json").read_text()))], **kwargs)

    with pytest.raises(UnauditedExtractError, match="refusing to link: it was encoded with --no-audit"):
        gate(root / "skipped")
    with pytest.raises(UnauditedExtractError, match="refusing to link: its release audit failed.*47.0%"):
        gate(failed_extract)
    gate(root / "shipped")
    for path in (root / "shipped", failed_extract, root / "skipped"):  # the override links them, naming each
        gate(path, allow_unaudited=True)
    err = capsys.readouterr().err
    assert f"{failed_extract}: linked although its release audit failed" in err and "(--allow-unaudited)" in err
    assert "skipped: linked although it was encoded with --no-audit" in err
    assert "shipped: linked" not in err
    monkeypatch.setenv("LINKAGE_ALLOW_UNAUDITED", "1")  # the environment's override is named as such
    gate(failed_extract)
    assert "(LINKAGE_ALLOW_UNAUDITED=1)" in capsys.readouterr().err
    assert len(check_extracts([failed_extract])) == 1  # validation alone does not gate (inspection tools)


@pytest.mark.parametrize("entry", [linkage.link_extracts, linkage.link.link_extracts],
                         ids=["linkage.link_extracts", "linkage.link.link_extracts (Spark driver scripts)"])
def test_the_library_api_refuses_an_unaudited_extract_like_the_command(hashed, failed_extract, entry, monkeypatch,
                                                                     tmp_path):
    monkeypatch.delenv("LINKAGE_ALLOW_UNAUDITED", raising=False)
    out = tmp_path / "link"
    for extract in (failed_extract, hashed["root"] / "skipped"):
        with pytest.raises(UnauditedExtractError, match="refusing to link.*allow_unaudited=True") as refused:
            entry([extract], out, quiet=True)
        assert refused.value.exit_code == 2 and str(extract) in str(refused.value)
        assert not out.exists()


def test_the_library_api_links_an_unaudited_extract_when_allowed(failed_extract, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("LINKAGE_ALLOW_UNAUDITED", raising=False)
    link = linkage.link_extracts(failed_extract, tmp_path / "link", quiet=True, allow_unaudited=True)
    assert link.manifest["counts"]["persons"] > 0
    assert f"{failed_extract}: linked although its release audit failed" in capsys.readouterr().err


def test_link_cli_refuses_a_failed_audit_and_links_it_with_the_override(hashed, failed_extract, monkeypatch):
    monkeypatch.delenv("LINKAGE_ALLOW_UNAUDITED", raising=False)
    out = failed_extract.parent / "link"
    refused = CliRunner().invoke(app, ["link", str(failed_extract), "--out", str(out), "--quiet"])
    assert refused.exit_code == 2, refused.output
    assert "refusing to link" in refused.output and "release audit failed" in refused.output
    assert "Traceback" not in refused.output and not out.exists()
    linked = CliRunner().invoke(app, ["link", str(failed_extract), "--out", str(out), "--quiet", "--allow-unaudited"])
    assert linked.exit_code == 0, linked.output
    assert "linked although its release audit failed" in linked.output and "47.0%" in linked.output
    assert linked.output.rstrip().endswith("(--allow-unaudited)") or "(--allow-unaudited)\n" in linked.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert "failed" in json.dumps(manifest)  # the link manifest records each extract's audit status


def test_the_gate_reads_the_clear_extract_once_for_everything_it_needs(hashed):
    # One pass gives what three separate reads gave: the oracle, the worst-case population and the worst-case
    # name reference (the gate used to read the clear extract once for each).
    import pandas as pd

    from linkage.audit.population import population_from_input
    from linkage.audit.verify import reference_from_input, scan_clear_extract

    raw, lines = hashed["root"] / "raw" / "police.csv", []
    columns = ["surname__exact", "full_name__near_dob", "given_name__bloom"]
    scan = scan_clear_extract(SHIPPED, bytes(range(32)), raw, columns, progress=lines.append)
    pd.testing.assert_frame_equal(scan.population, population_from_input(SHIPPED, raw))
    assert scan.reference == reference_from_input(SHIPPED, raw)
    assert all(scan.oracle[c] for c in columns)  # every column scored, token lists included
    tokens = pd.read_parquet(hashed["root"] / "shipped" / "tokens.parquet")
    firsts = {v[0] for v in tokens["full_name__near_dob"].dropna() if len(v)}
    assert firsts <= scan.oracle["full_name__near_dob"].keys()  # a list is scored by its first token
    assert lines and lines[-1].startswith(f"read {scan.rows:,} rows")


def test_neither_package_is_published_without_the_other(hashed, tmp_path, monkeypatch):
    from linkage.audit import gate
    from linkage.errors import OutputError

    root = hashed["root"]
    secret = keys.read_key_file(root / "k.key")
    public = keys.read_analysis_public_key(root / "analysis.pub")
    raw = root / "raw-small" / "police.csv"
    # The attribute package inside the identifier package would cross to the linkage unit with it: refused first.
    with pytest.raises(OutputError, match="must be neither"):
        gate.encode_with_release_gate(SHIPPED, secret, raw, tmp_path / "ids", audit=False, quiet=True,
                                      analysis_public_key=public, attributes_out=tmp_path / "ids" / "attr")
    assert not (tmp_path / "ids").exists()
    # The second rename fails after the first succeeded: the first is taken back.
    real, calls = gate.publish_dir, []

    def publish_then_fail(staged, out):
        calls.append(out)
        if len(calls) == 2:
            raise OSError("disk full")
        real(staged, out)

    monkeypatch.setattr(gate, "publish_dir", publish_then_fail)
    with pytest.raises(OSError):
        gate.encode_with_release_gate(SHIPPED, secret, raw, tmp_path / "ids", audit=False, quiet=True,
                                      analysis_public_key=public, attributes_out=tmp_path / "attrs")
    assert [Path(c).name for c in calls] == ["ids", "attrs"]  # identifiers first
    assert sorted(p.name for p in tmp_path.iterdir()) == []    # nothing published, no staging folder left


def test_the_library_partner_step_blocks_a_weak_extract_like_the_command(hashed, tmp_path, capsys, monkeypatch):
    # linkage.encode_extract runs the same gate as `linkage hash`: the unhardened profile fails its audit, a
    # typed error (the command's exit 4) is raised, and neither package nor a staging folder is left behind.
    root = hashed["root"]
    with pytest.raises(ReleaseAuditFailed, match="release audit FAILED.*threshold 10.0%.*nothing was written") as e:
        linkage.encode_extract(root / "raw-small" / "police.csv", tmp_path / "weak", config=WEAK, key=root / "k.key",
                               quiet=True, analysis_public_key=root / "analysis.pub",
                               audit_report=tmp_path / "report")
    assert e.value.exit_code == 4
    assert capsys.readouterr().err.count("warning: weak encodings") >= 3  # named before the audit runs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]   # no extract, attributes or staging
    report = json.loads((tmp_path / "report" / "audit.json").read_text())
    assert report["passed"] is False and report["risk"] > 0.1
    # The threshold is the caller's (passed to the gate): the same extract passes a gate that accepts any risk.
    lenient = linkage.encode_extract(root / "raw-small" / "police.csv", tmp_path / "lenient", config=WEAK,
                                     key=root / "k.key", quiet=True, max_risk=1.0)
    assert lenient.release_audit is not None and lenient.release_audit["status"] == "passed"
    assert lenient.release_audit["max_risk"] == 1.0 and lenient.release_audit["risk"] == report["risk"]
    # ...but the linkage unit holds every extract to its own 10%: a pass at a partner's lenient threshold is refused.
    monkeypatch.delenv("LINKAGE_ALLOW_UNAUDITED", raising=False)
    with pytest.raises(UnauditedExtractError, match=r"passed only at a threshold of 100.0%.*accepts at most 10%"):
        linkage.link_extracts(lenient.folder, tmp_path / "link", quiet=True)
    assert not (tmp_path / "link").exists()
    with pytest.raises(ValueError, match="max_risk must be a share"):
        linkage.encode_extract(root / "raw-small" / "police.csv", tmp_path / "bad", config=WEAK, key=root / "k.key",
                               quiet=True, max_risk=5)
    assert not (tmp_path / "bad").exists()


def test_the_library_partner_step_records_audit_false_and_link_refuses_it(hashed, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LINKAGE_ALLOW_UNAUDITED", raising=False)
    root = hashed["root"]
    extract = linkage.encode_extract(root / "raw-small" / "police.csv", tmp_path / "e", config=SHIPPED,
                                     key=root / "k.key", quiet=True, audit=False)
    assert extract.release_audit == json.loads((tmp_path / "e" / "manifest.json").read_text())["release_audit"]
    assert extract.release_audit["status"] == "not audited" and extract.release_audit["reason"] == LIBRARY_NO_AUDIT
    assert "encoded with audit=False" in capsys.readouterr().err
    with pytest.raises(UnauditedExtractError, match="refusing to link: it was encoded with --no-audit "
                                                    r"\(audit=False in Python\).*allow_unaudited=True"):
        linkage.link_extracts(extract.folder, tmp_path / "link", quiet=True)
    assert not (tmp_path / "link").exists()
    link = linkage.link_extracts(extract.folder, tmp_path / "link", quiet=True, allow_unaudited=True)
    assert link.manifest["counts"]["persons"] > 0
    assert f"{extract.folder}: linked although it was encoded with --no-audit" in capsys.readouterr().err
    # the override is on record in the link's manifest, not only on a terminal
    assert [i["release_audit_override"] for i in link.manifest["inputs"]] == ["--allow-unaudited"]


@pytest.mark.parametrize(("record", "expected"), [
    (None, "its manifest records no release audit (encode with `linkage hash`, which audits its output)"),
    ({"status": "passed", "risk": 0.031, "max_risk": 0.1}, None),
    ({"status": "passed", "risk": 0.031, "max_risk": 1.0},
     "its release audit passed only at a threshold of 100.0% (the strongest attack re-identifies 3.1% of records "
     "in the worst case); the linkage unit accepts at most 10%"),
    ({"status": "passed", "risk": 0.25, "max_risk": 0.1},  # a record that contradicts itself is not a pass either
     "its release audit passed only at a threshold of 10.0% (the strongest attack re-identifies 25.0% of records "
     "in the worst case); the linkage unit accepts at most 10%"),
    ({"status": "passed", "max_risk": 0.1}, "its release audit record gives no risk or threshold"),
    ({"status": "passed", "risk": 0.01}, "its release audit record gives no risk or threshold"),
    ({"status": "failed", "risk": 0.42, "max_risk": 0.1, "strongest_attack": "x\ny"},  # the attack name: not echoed
     "its release audit failed: the strongest attack re-identifies 42.0% of records in the worst case "
     "(threshold 10.0%)"),
    ({"status": "failed", "risk": "high"},
     "its release audit failed: the strongest attack re-identifies an unknown share of records in the worst case"),
    ({"status": "not audited", "reason": "linkage hash --no-audit"},
     "it was encoded with --no-audit (audit=False in Python)"),
    ({"status": "skipped"}, "its release audit record is not understood"),
])
def test_each_audit_problem_message(record, expected):
    """Every branch of the linkage unit's verdict on a manifest, word for word (no key, no data needed)."""
    manifest = {"source": "police"} if record is None else {"source": "police", "release_audit": record}
    assert audit_problem(manifest) == expected


def test_reidentified_text_is_the_one_wording_of_an_audit_result():
    assert reidentified_text(0.0534, 0.1) == "re-identifies 5.3% of records in the worst case (threshold 10.0%)"
    assert reidentified_text(0.0534) == "re-identifies 5.3% of records in the worst case"
    assert reidentified_text(None, 0.05) == "re-identifies an unknown share of records in the worst case " \
                                            "(threshold 5.0%)"
