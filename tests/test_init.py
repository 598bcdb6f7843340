"""`linkage init` (a starting config from a sample) and `linkage hash --dry-run` (checks without writing)."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import load_partner_config
from linkage.encode import encode_extract
from linkage.encode.dryrun import dry_run
from linkage.init import init_config
from linkage.keys import generate_key
from linkage.resources import configs_dir
from linkage.synth import generate_extracts

runner = CliRunner()


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("init") / "raw"
    generate_extracts(600, 9, out, quiet=True)
    return out


@pytest.mark.parametrize("source,expected", [
    ("police", {"local_id": "nominal_id", "date_of_birth": "date_of_birth", "sex": "gender", "postcode": "postcode"}),
    ("education", {"local_id": "upn", "date_of_birth": "dob", "upn": "upn", "middle_names": "middle_names"}),
    ("social_care", {"local_id": "child_id", "date_of_birth": "dob", "nhs_number": "nhs_number", "upn": "upn"}),
])
def test_init_on_synthetic_extracts_maps_columns_and_hash_accepts_the_rows(raw, tmp_path, source, expected):
    path = tmp_path / f"{source}.yaml"
    init_config(raw / f"{source}.csv", path, source=source)
    cfg = load_partner_config(path)
    assert cfg.local_id == expected.pop("local_id")
    for field, column in expected.items():
        assert getattr(cfg.identifiers, field).column == column
    shipped = load_partner_config(configs_dir() / "partners" / f"{source}.yaml")
    assert cfg.identifiers.date_of_birth.formats == shipped.identifiers.date_of_birth.formats
    report = dry_run(path, raw / f"{source}.csv", quiet=True)
    assert report.accepted_share >= 0.99
    text = path.read_text()
    assert text.count("# ") >= len(cfg.identifiers.columns()) + 3  # every choice explained


def test_init_detects_encoding_delimiter_formats_placeholders_and_withholds_identifiers(tmp_path):
    rows = ["ID;First Name;Family Name;Birth Date;Home Address;Outcome"]
    for i in range(400):
        dob = "01.01.1900" if i % 10 == 0 else f"{1 + i % 28:02d}.{1 + i % 12:02d}.{1980 + i % 30}"
        rows.append(f"P{i:05d};Zoë;Brontë;{dob};{i} High St;{'A' if i % 2 else 'B'}")
    path = tmp_path / "extract.csv"
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("cp1252"))
    out = tmp_path / "cfg.yaml"
    init_config(path, out, source="custom")
    cfg = load_partner_config(out)
    assert (cfg.input.encoding, cfg.input.delimiter) == ("cp1252", ";")
    assert cfg.local_id == "ID"
    assert cfg.identifiers.given_name.column == "First Name"
    assert cfg.identifiers.surname.column == "Family Name"
    assert cfg.identifiers.date_of_birth.formats == ["%d.%m.%Y"]
    assert dt.date(1900, 1, 1) in cfg.identifiers.date_of_birth.placeholders
    assert [p.column for p in cfg.payload] == ["Outcome"]  # the address never travels in the payload
    assert "Home Address" in out.read_text()  # ... and the comment says it was left out
    report = dry_run(out, path, quiet=True)
    assert report.rows_accepted == 400 and report.placeholder_dobs == 40


def test_dry_run_matches_a_real_run_and_writes_nothing(raw, tmp_path):
    cfg = yaml.safe_load((configs_dir() / "partners" / "police.yaml").read_text())
    cfg["identifiers"]["date_of_birth"]["formats"] = ["%Y-%m-%d"]  # the wrong format: rows are rejected
    cfg["identifiers"]["postcode"]["on_invalid"] = "blank"
    cfg["max_rejected_share"] = cfg["max_blanked_share"] = 1.0  # let the real run finish, to compare counts
    path = tmp_path / "wrong.yaml"
    path.write_text(yaml.safe_dump(cfg))
    before = set(tmp_path.iterdir())
    result = runner.invoke(app, ["hash", "--dry-run", "--config", str(path), "--input", str(raw / "police.csv"),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert set(tmp_path.iterdir()) == before
    report = dry_run(path, raw / "police.csv", quiet=True)
    dob = next(f for f in report.fields if f.column == "date_of_birth")
    assert dob.rejected == dob.present > 0 and dob.accepted == 0
    assert "unparseable date" in dob.reasons.most_common(1)[0][0]
    assert "date_of_birth" in result.output and f"{report.rows_read:,}" in result.output
    manifest = encode_extract(path, generate_key(), raw / "police.csv", tmp_path / "enc", quiet=True)
    assert manifest["counts"]["rows_accepted"] == report.rows_accepted
    assert manifest["counts"]["rows_rejected"] == report.rows_rejected
    blanked = sum(manifest["counts"]["blanked_by_reason"].values())
    assert blanked == sum(f.blanked for f in report.fields)


def test_hash_without_key_needs_dry_run(tmp_path):
    result = runner.invoke(app, ["hash", "--config", "police", "--input", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "--dry-run" in result.output
