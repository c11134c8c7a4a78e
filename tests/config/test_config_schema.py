"""The JSON Schema generated from the models accepts what `load` accepts, for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.config import json_schema
from runner.config.yamlsource import parse_yaml

DATA = Path(__file__).parent / "data" / "valid"


def plain(value: Any) -> Any:
    """YAML data as JSON would carry it (SourceFloat becomes a float)."""
    return json.loads(json.dumps(value))


def test_schema_is_json_with_titles_and_descriptions() -> None:
    schema = json_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "runner ci.yml"
    assert schema["required"] == ["jobs"]
    assert set(schema["properties"]) == {"image", "env", "on", "jobs"}
    job = schema["$defs"]["Job"]
    assert job["additionalProperties"] is False
    assert {"if", "steps", "needs", "matrix", "services", "labels", "reports"} <= set(job["properties"])
    assert "if_" not in job["properties"]
    assert "from" in schema["$defs"]["ImageBuild"]["properties"]
    assert job["properties"]["network"]["anyOf"][0]["enum"] == ["none", "bridge", "host"]
    assert all(job["properties"][name].get("description") for name in ("steps", "needs", "timeout", "if"))


def test_contract_example_validates_against_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = plain(parse_yaml((DATA / "contract.yml").read_text(), "ci.yml").data)
    jsonschema.Draft202012Validator.check_schema(json_schema())
    jsonschema.Draft202012Validator(json_schema()).validate(data)


@pytest.mark.parametrize("name", ["anchors.yml", "minimal.yml"])
def test_other_valid_examples_validate(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = plain(parse_yaml((DATA / name).read_text(), name).data)
    jsonschema.Draft202012Validator(json_schema()).validate(data)


@pytest.mark.parametrize(
    "data",
    [
        {"jobs": {"t": {"stpes": ["x"]}}},
        {"jobs": {"t": {"steps": ["x"], "network": "brige"}}},
        {"jobs": {"t": {"steps": [{"name": "no run"}]}}},
        {"jbos": {}},
    ],
)
def test_schema_rejects_what_load_rejects(data: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(json_schema()).validate(data)
