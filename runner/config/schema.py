"""The JSON Schema of ci.yml, for editors (`runner schema`)."""

from __future__ import annotations

from typing import Any

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def generate() -> dict[str, Any]:
    """The schema of the `Pipeline` model, by the names users write (`if`, `from`, ...)."""
    from runner.config.models import Pipeline

    schema = Pipeline.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": SCHEMA_DIALECT, **_json_schema_keywords(schema)}


# pydantic leaves field constraints on annotated types under its own names; editors read JSON Schema's
_KEYWORDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _json_schema_keywords(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            _KEYWORDS.get(k, k) if not isinstance(v, (dict, list)) else k: _json_schema_keywords(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_json_schema_keywords(item) for item in node]
    return node
