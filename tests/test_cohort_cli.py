"""The `linkage cohort` command: a thin layer over build_cohort with one-line errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from linkage.cli import app
from tests.test_cohort import write_config, write_fixture


def test_cohort_command_writes_a_release(tmp_path):
    link, dirs = write_fixture(tmp_path)
    cfg = write_config(tmp_path, exact=False)
    out = tmp_path / "release"
    result = CliRunner().invoke(app, ["cohort", "--config", str(cfg), "--link", str(link), "--out", str(out),
                                      "--quiet", *map(str, dirs)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cohort"] == "high_harm"
    assert (out / "report.html").is_file() and (out / "factor_prevalence.csv").is_file()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no partial folder left behind


def test_cohort_command_fails_in_one_line_without_writing(tmp_path):
    link, dirs = write_fixture(tmp_path)
    cfg = write_config(tmp_path, exact=False)
    out = tmp_path / "release"
    result = CliRunner().invoke(app, ["cohort", "--config", str(cfg), "--link", str(tmp_path / "nowhere"),
                                      "--out", str(out), "--quiet", *map(str, dirs)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "crosswalk.parquet" in lines[0]
    assert not out.exists()
