"""Turning pydantic's validation errors into `ci.yml:LINE:COL: message` diagnostics a person can act on."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel

from runner.config import models
from runner.config.errors import Diagnostic
from runner.config.spec import Position
from runner.config.yamlsource import Located, YamlPath, find_position

_UNION_TAGS = {"str": str, "list": list, "map": dict}

# Parts of the document that have their own name in messages, with the model checking them.
# "*" matches a mapping key (job or service name), "#" a list index.
_CONTEXTS: list[tuple[tuple[str, ...], type[BaseModel], str]] = [
    ((), models.Pipeline, "the top level"),
    (("image",), models.ImageBuild, "the pipeline image"),
    (("image", "build", "#"), models.BuildStep, "build step {0} of the pipeline image"),
    (("on",), models.On, "'on'"),
    (("on", "push"), models.Push, "'on.push'"),
    (("jobs", "*"), models.Job, "job '{0}'"),
    (("jobs", "*", "image"), models.ImageBuild, "the image of job '{0}'"),
    (("jobs", "*", "image", "build", "#"), models.BuildStep, "build step {1} of job '{0}'"),
    (("jobs", "*", "services", "*"), models.Service, "service '{1}' of job '{0}'"),
    (("jobs", "*", "resources"), models.Resources, "the resources of job '{0}'"),
    (("jobs", "*", "resources", "io"), models.IoLimits, "the io limits of job '{0}'"),
    (("jobs", "*", "security"), models.Security, "the security settings of job '{0}'"),
    (("jobs", "*", "cache", "#"), models.Cache, "cache entry {1} of job '{0}'"),
    (("jobs", "*", "steps", "#"), models.Step, "step {1} of job '{0}'"),
    (("jobs", "*", "reports"), models.Reports, "the reports of job '{0}'"),
    (("jobs", "*", "matrix"), models.Matrix, "the matrix of job '{0}'"),
]

_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _match(pattern: tuple[str, ...], path: YamlPath) -> list[str] | None:
    if len(pattern) != len(path):
        return None
    captured: list[str] = []
    for want, have in zip(pattern, path, strict=True):
        if want == "#" and isinstance(have, int):
            captured.append(str(have + 1))
        elif want == "*" and isinstance(have, str):
            captured.append(have)
        elif want != have:
            return None
    return captured


def context_of(path: YamlPath) -> tuple[int, str, type[BaseModel] | None]:
    """The deepest named part containing `path`: (its length, its name, its model)."""
    best: tuple[int, str, type[BaseModel] | None] = (0, "the top level", models.Pipeline)
    for pattern, model, label in _CONTEXTS:
        if len(pattern) > len(path) or len(pattern) < best[0]:
            continue
        captured = _match(pattern, path[: len(pattern)])
        if captured is not None:
            best = (len(pattern), label.format(*captured), model)
    return best


def _relative(rel: YamlPath) -> str:
    if not rel:
        return ""
    *rest, last = rel
    if isinstance(last, int):
        inner = _relative(tuple(rest))
        return f"item {last + 1} of {inner}" if inner else f"item {last + 1}"
    if any(isinstance(part, int) for part in rest):
        return f"'{last}' in {_relative(tuple(rest))}"
    return "'" + ".".join(str(part) for part in rel) + "'"


def describe(path: YamlPath) -> str:
    """How messages name the value at `path`: `'timeout' in job 'test'`, `step 2 of job 'test'`."""
    length, label, _ = context_of(path)
    rel = _relative(path[length:])
    if rel and length == 0:
        return rel
    return f"{rel} in {label}" if rel else label


def allowed_keys(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def suggestion(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def got(value: Any) -> str:
    """A short description of a YAML value for 'must be X, not Y'."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"the string '{text}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _resolve(data: Any, loc: tuple[Any, ...]) -> tuple[YamlPath, bool, str | None]:
    """Map a pydantic `loc` onto the document: (path, the error is about a key, missing key name)."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if part == "[key]":
            return tuple(path), True, None
        if part in _UNION_TAGS and isinstance(current, _UNION_TAGS[part]):
            continue  # the branch pydantic took in a discriminated union
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if (isinstance(current, dict) and part in current) or in_list:
            current = current[part]
            path.append(part)
        elif last and isinstance(part, str):
            return tuple(path), False, part
    return tuple(path), False, None


class Translator:
    """Builds diagnostics for one document from pydantic errors."""

    def __init__(self, file: str, data: Any, positions: dict[YamlPath, Located]) -> None:
        self.file = file
        self.data = data
        self.positions = positions

    def position(self, path: YamlPath, *, key: bool = False) -> Position:
        return find_position(self.positions, path, self.file, key=key)

    def diagnostic(self, position: Position, message: str) -> Diagnostic:
        return Diagnostic(position.file, position.line, position.column, message)

    def translate(self, error: dict[str, Any]) -> Diagnostic:
        kind = str(error["type"])
        path, about_key, missing = _resolve(self.data, tuple(error["loc"]))
        if kind == "extra_forbidden" and path:
            _, label, model = context_of(path[:-1])
            name = str(path[-1])
            where = "at the top level" if len(path) == 1 else f"in {label}"
            message = f"unknown key '{name}' {where}{suggestion(name, allowed_keys(model))}"
            return self.diagnostic(self.position(path, key=True), message)
        if kind == "missing" and missing is not None:
            _, label, _ = context_of(path)
            where = "at the top level" if not path else f"in {label}"
            message = f"missing required key '{missing}' {where}"
            return self.diagnostic(self.position(path, key=True), message)
        if about_key:
            return self.diagnostic(self.position(path, key=True), self.key_problem(error))
        empty = error.get("input", "") is None  # `key:` with nothing after it: point at the key
        return self.diagnostic(self.position(path, key=empty), self.value_problem(kind, path, error))

    @staticmethod
    def key_problem(error: dict[str, Any]) -> str:
        text = str(error.get("ctx", {}).get("problem") or error["msg"])
        if "job name" in text:
            return f"{text}: names use letters, digits, '_', '-' and '.', and start with a letter or '_'"
        if "variable name" in text:
            return f"{text}: use letters, digits and '_', not starting with a digit"
        return text

    def value_problem(self, kind: str, path: YamlPath, error: dict[str, Any]) -> str:
        subject = describe(path)
        value = error.get("input")
        ctx = error.get("ctx") or {}
        if kind == "expected":
            return f"{subject} must be {error['msg']}, not {got(value)}"
        if kind in _EXPECTED:
            return f"{subject} must be {_EXPECTED[kind]}, not {got(value)}"
        if kind == "literal_error":
            choices = [c.strip(" '") for c in str(ctx.get("expected", "")).replace(" or ", ", ").split(",")]
            hint = suggestion(str(value), choices) if isinstance(value, str) else ""
            return f"{subject} must be one of {', '.join(choices)}, not {got(value)}{hint}"
        if kind == "too_short" and path[-1:] == ("steps",):
            return f"job '{path[1]}' has no steps"
        if kind == "too_short" and path == ("jobs",):
            return "the pipeline has no jobs"
        if kind in ("too_short", "string_too_short"):
            return f"{subject} must not be empty"
        if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            words = {
                "greater_than": "greater than",
                "greater_than_equal": "at least",
                "less_than": "less than",
                "less_than_equal": "at most",
            }
            limit = next(iter(ctx.values()), "?")
            if isinstance(limit, float) and limit.is_integer():
                limit = int(limit)
            return f"{subject} must be {words[kind]} {limit}, not {got(value)}"
        if kind == "invalid":
            return f"{subject}: {ctx.get('problem', error['msg'])}"
        return f"{subject}: {error['msg']}"
