"""The JSON Schema of ci.yml, for editors (`runner schema`)."""

from __future__ import annotations

from typing import Any

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def generate() -> dict[str, Any]:
    """The schema of the `Pipeline` model, by the names users write (`if`, `from`, ...)."""
    from runner.config.models import Pipeline

    schema = Pipeline.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": SCHEMA_DIALECT, **schema}
