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
