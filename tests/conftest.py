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
