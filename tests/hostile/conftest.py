"""Shared helpers of the hostile-input suite: small synthetic extracts written by the tests themselves.

Every case plays a hostile or careless partner. The helpers check the common promises: a non-zero exit
with one ``error:`` line, nothing written, and no clear value anywhere in the output.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.encode import encode_extract
from linkage.io import sha256_file

GIVEN = ["Amelia", "Oliver", "Isla", "Jack", "Priya", "Mohammed", "Grace", "Harry", "Zara", "Leo", "Ava", "Noah"]
SURNAMES = ["Smith", "Patel", "Jones", "Khan", "Taylor", "Brown", "Singh", "Evans", "Wilson", "Ahmed"]
HEADER = ["person_ref", "forename", "surname", "dob", "sex", "postcode", "event"]


def people(n: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        born = dt.date(1980, 1, 1) + dt.timedelta(days=rng.randrange(0, 9000))
        rows.append([f"P{i:05d}", rng.choice(GIVEN), rng.choice(SURNAMES), born.strftime("%d/%m/%Y"),
                     "M" if i % 2 else "F", f"LE{rng.randrange(1, 9)} {rng.randrange(1, 9)}AB", f"E{i}"])
    return rows


CLEAR_VALUES = GIVEN + SURNAMES


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def config_dict(source: str = "police", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "project_id": "hostile-test", "source": source, "local_id": "person_ref",
        "identifiers": {"given_name": {"column": "forename"}, "surname": {"column": "surname"},
                        "date_of_birth": {"column": "dob", "formats": ["%d/%m/%Y"]},
                        "sex": {"column": "sex"}, "postcode": {"column": "postcode"}},
        "payload": [{"column": "event"}],
    }
    data.update(overrides)
    return data


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))  # JSON is valid YAML
    return path


def encode(tmp: Path, key: bytes, name: str, rows: list[list[str]], **overrides: Any) -> Path:
    from linkage.config import PartnerConfig

    raw = write_csv(tmp / f"{name}.csv", rows)
    out = tmp / f"enc_{name}"
    encode_extract(PartnerConfig.model_validate(config_dict(name, **overrides)), key, raw, out, quiet=True,
                   today=dt.date(2025, 1, 1))
    return out


def rewrite_manifest(folder: Path, change) -> None:
    """Edit a manifest as an attacker would, recomputing every checksum so only the contract can catch it."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    manifest["files"] = {name: sha256_file(folder / name) for name in manifest["files"] if (folder / name).exists()}
    path.write_text(json.dumps(manifest))


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def assert_refused(result: Any, *, names: str | None = None, clear: list[str] = CLEAR_VALUES) -> str:
    """Non-zero exit, exactly one line starting 'error:', naming ``names``, with no clear value or traceback."""
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    if names is not None:
        assert names in lines[0], lines[0]
    for value in clear:
        assert value not in result.output, value
    return lines[0]


def assert_nothing_written(parent: Path, out_name: str) -> None:
    assert not (parent / out_name).exists()
    assert not list(parent.glob(f".{out_name}.partial-*"))


@pytest.fixture
def two_extracts(tmp_path: Path, key: bytes) -> tuple[Path, Path]:
    rows = people(80)
    return encode(tmp_path, key, "police", rows), encode(tmp_path, key, "health", rows[:50])
