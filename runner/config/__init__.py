"""ci.yml: loading with positions, validation, `${{ }}` expressions, matrices, and the JSON Schema.

This module stays light (the CLI imports it on every run); pydantic, ruamel.yaml and jinja2 are
imported inside the functions that need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.config.context import EvalContext
from runner.config.errors import ConfigError, Diagnostic

if TYPE_CHECKING:
    from runner.config.document import Document
    from runner.config.spec import PipelineSpec, Position

__all__ = [
    "ConfigError",
    "Diagnostic",
    "Document",
    "EvalContext",
    "compile_pipeline",
    "evaluate",
    "json_schema",
    "load",
]


def __getattr__(name: str) -> Any:
    """`runner.config.Document` without importing pydantic until someone asks for it."""
    if name == "Document":
        from runner.config.document import Document

        return Document
    raise AttributeError(f"module 'runner.config' has no attribute {name!r}")


def load(path: Path, *, text: str | None = None) -> Document:
    """Parse and validate the ci.yml at `path` (or `text`, reported as `path`); raises ConfigError."""
    from runner.config.document import load as _load

    return _load(Path(path), text=text)


def compile_pipeline(doc: Document, context: EvalContext | None = None) -> PipelineSpec:
    """Expand matrices, evaluate every `${{ }}` and order the jobs; raises ConfigError."""
    from runner.config.compiler import compile_document

    return compile_document(doc, context or EvalContext())


def evaluate(
    text: str,
    variables: dict[str, Any],
    *,
    native: bool = False,
    position: Position | None = None,
) -> Any:
    """Evaluate the `${{ }}` in `text` with `variables` (e.g. matrix, env, git, job).

    With `native`, a string that is exactly one expression keeps the value's type (a bool for
    `if:`). Failures raise ConfigError, positioned at `position` (or `<expression>:1:COL`).
    """
    from runner.config import expressions

    try:
        return expressions.evaluate(text, variables, native=native)
    except expressions.ExpressionError as exc:
        if position is None:
            raise ConfigError.at("<expression>", 1, exc.offset + 1, exc.message) from None
        raise ConfigError.at(position.file, position.line, position.column, exc.message) from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ci.yml, generated from the validation models."""
    from runner.config.schema import generate

    return generate()
