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


@pytest.fixture(autouse=True)
def _release_gate_off(monkeypatch):
    """Tests link extracts encoded by the library (no release audit); the gate's own tests turn it back on."""
    monkeypatch.setenv("LINKAGE_ALLOW_UNAUDITED", "1")
