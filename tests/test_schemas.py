"""The JSON Schemas in schemas/ are generated from the pydantic models and must not drift from them."""

from __future__ import annotations

from pathlib import Path

from linkage.config import export_schemas

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def test_committed_schemas_match_the_models(tmp_path):
    written = export_schemas(tmp_path)
    names = sorted(p.name for p in written)
    assert "partner-config.schema.json" in names and "encoded-manifest.schema.json" in names
    assert names == sorted(p.name for p in SCHEMAS.glob("*.schema.json")), "run: linkage schemas --out schemas"
    for path in written:
        assert path.read_text() == (SCHEMAS / path.name).read_text(), f"{path.name} is stale: linkage schemas"
