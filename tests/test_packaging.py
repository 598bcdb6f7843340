"""Install and first-run experience: shipped configs by name, --version, output parents, help text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkage import __version__
from linkage.cli import app
from linkage.errors import LinkageConfigError
from linkage.io import atomic_output_dir
from linkage.resources import configs_dir, data_path, default_link_config, resolve_config, shipped_configs

runner = CliRunner()


def test_shipped_configs_resolve_by_name_and_files_win(tmp_path, monkeypatch):
    assert resolve_config("police") == configs_dir() / "partners" / "police.yaml"
    assert resolve_config("unhardened/police.yaml") == configs_dir() / "partners" / "unhardened" / "police.yaml"
    assert resolve_config("high_harm", "cohort") == configs_dir() / "cohorts" / "high_harm.yaml"
    assert {"police", "education", "social_care", "febrl"} <= set(shipped_configs("partner"))
    assert default_link_config().is_file() and data_path("name_frequencies.csv").is_file()
    # A partner's own file of the same name in the working folder is used, not the shipped one.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "police").write_text("own: file\n")
    assert resolve_config("police") == Path("police")


@pytest.mark.parametrize("name", ["nosuch", "../linkage", "partners/../../pyproject"])
def test_unknown_config_name_is_one_line_listing_what_ships(name):
    with pytest.raises(LinkageConfigError, match="shipped: .*police") as err:
        resolve_config(name)
    assert "\n" not in str(err.value)


def test_version_flag():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"linkage {__version__}"


def test_output_parents_are_created(tmp_path):
    target = tmp_path / "enc" / "police"
    with atomic_output_dir(target) as tmp:
        (tmp / "f").write_text("x")
    assert (target / "f").read_text() == "x"


def test_help_renders_pip_extras():
    result = runner.invoke(app, ["link", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0
    assert "pip install 'linkage[spark]'" in re.sub(r"\s+", " ", result.stdout.replace("│", " "))


@pytest.mark.slow  # builds in an isolated environment, which fetches setuptools from the package index
def test_wheel_ships_configs_code_lists_and_reference_data(tmp_path):
    """A plain (non-editable) install gets everything `linkage demo` and `hash --config police` need."""
    import subprocess
    import sys
    import zipfile

    repo = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(tmp_path), str(repo)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("linkage-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {str(p.relative_to(repo)) for p in (repo / "linkage" / "configs").rglob("*.yaml")}
    assert shipped and shipped <= names
    assert {"linkage/configs/partners/police.yaml", "linkage/configs/cohorts/high_harm.yaml",
            "linkage/configs/offences.yaml", "linkage/configs/linkage.yaml",
            "linkage/configs/partners/unhardened/police.yaml",
            "linkage/data/name_frequencies.csv", "linkage/profile/data/ons_census2021_llr.csv"} <= names
    # Every file the package reads beside its code ships, wherever it sits (the census denominators under
    # linkage/profile/data were once left out: `linkage profile` worked from a checkout only).
    data_files = {str(p.relative_to(repo)) for p in (repo / "linkage").rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert data_files - names == set()
