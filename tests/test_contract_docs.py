"""docs/data-contracts.md describes every field of every contract schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkage.contracts import CONTRACT_SCHEMAS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "data-contracts.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(CONTRACT_SCHEMAS))
def test_every_contract_field_is_documented(name):
    schema = CONTRACT_SCHEMAS[name].model_json_schema()
    assert f"schemas/{name}.schema.json" in DOC
    assert schema["x-schema-version"]
    for field in schema["properties"]:
        assert f"`{field}`" in DOC, f"{name}: field {field} is not described in docs/data-contracts.md"
