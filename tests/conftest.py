"""Shared fixtures: fresh keys and small partner extracts written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkage import keys

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


@pytest.fixture
def key() -> bytes:
    return keys.generate_key()


@pytest.fixture
def key_file(tmp_path: Path, key: bytes) -> Path:
    path = tmp_path / "project.key"
    keys.write_key_file(path, key)
    return path


@pytest.fixture
def analysis_private():
    """A fresh analysis-environment key pair (the private half; ``.public_key()`` gives the other)."""
    return keys.generate_analysis_keypair()


DEMO_PEOPLE = 1500


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    """One run of ``linkage demo`` (every stage, release audits included) shared by the tests that only read
    its output (test_demo's privacy scans, test_browser's rendering): it takes about a minute on two cores."""
    from linkage.demo import run_demo

    out = tmp_path_factory.mktemp("demo") / "run"
    # A fixed key: the release audits of this small population (a ~100-record health extract) then give the same
    # verdict on every run; a fresh key per run would make the test's outcome a draw.
    return out, run_demo(out, people=DEMO_PEOPLE, seed=11, quiet=True, project_key=bytes(range(32)))


@pytest.fixture(autouse=True, scope="session")
def _release_gate_off():
    """Tests link extracts encoded by the library (no release audit) through the CLI too; the gate's own
    tests remove this override (monkeypatch.delenv) where they check the refusal."""
    import os

    previous = os.environ.get("LINKAGE_ALLOW_UNAUDITED")
    os.environ["LINKAGE_ALLOW_UNAUDITED"] = "1"
    yield
    if previous is None:
        os.environ.pop("LINKAGE_ALLOW_UNAUDITED", None)
    else:
        os.environ["LINKAGE_ALLOW_UNAUDITED"] = previous
