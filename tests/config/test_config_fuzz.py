"""Fuzzing `load`: any text or structure gives a Document or a ConfigError, never another exception."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.config import ConfigError, EvalContext, compile_pipeline, load

KEYS = [
    *("jobs", "image", "env", "on", "push", "branches", "tags", "steps", "run", "name", "when", "timeout"),
    *("needs", "matrix", "include", "exclude", "services", "command", "ready", "resources", "memory"),
    *("cpus", "pids", "network", "retry", "allow_failure", "if", "cache", "key", "paths", "secrets"),
    *("artifacts", "reports", "junit", "labels", "from", "build", "copy", "to", "workdir", "dockerfile"),
    *("context", "py", "t"),
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "1G",
            "20m",
            "none",
            "bridge",
            "always",
            "${{ matrix.py }}",
            "${{ ''.__class__ }}",
            "${{ 1 + }}",
            "${{",
            "host",
            "a b",
            "-1",
            "t",
            "${{ hash_files('*') }}",
        ]
    ),
    st.text(max_size=12),
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=30,
)
YAMLISH = st.text(
    alphabet=st.sampled_from(list("jobs:stepun- \n\t[]{},'\"&*!#|>?%@`$x1.~<=")),
    max_size=200,
)


def to_yaml(value: Any, indent: int = 0) -> str:
    """A block-style YAML rendering that keeps strings as quoted scalars."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "".join(f"\n{pad}{quote(k)}:{' ' if not isinstance(v, dict | list) or not v else ''}"
                       f"{to_yaml(v, indent + 2)}" for k, v in value.items())  # fmt: skip
    if isinstance(value, list):
        if not value:
            return "[]"
        return "".join(f"\n{pad}- {to_yaml(v, indent + 2).lstrip()}" for v in value)
    return quote(value)


def quote(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            ".nan"
            if value != value
            else (".inf" if value > 0 else "-.inf")
            if abs(value) == float("inf")
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def load_or_error(text: str) -> None:
    try:
        doc = load(Path("ci.yml"), text=text)
    except ConfigError as exc:
        assert exc.diagnostics
        assert all(d.line >= 1 and d.column >= 1 and d.message for d in exc.diagnostics)
        return
    try:
        compile_pipeline(doc, EvalContext(git={"event": "exec"}))
    except ConfigError as exc:
        assert exc.diagnostics


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_random_text(text: str) -> None:
    load_or_error(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STRUCTURES)
def test_random_structures(value: Any) -> None:
    load_or_error(to_yaml(value))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), STRUCTURES, max_size=4), st.sampled_from(KEYS))
def test_random_jobs(job: dict[str, Any], name: str) -> None:
    load_or_error(to_yaml({"jobs": {name: job}}))


NEARLY_VALID_JOB = st.fixed_dictionaries(
    {"steps": st.lists(st.sampled_from(["make", "echo ${{ matrix.py }}", "echo ${{ env.A }}"]), min_size=1)},
    optional={
        "matrix": st.fixed_dictionaries(
            {"py": st.lists(SCALARS, max_size=3)},
            optional={
                "include": st.lists(
                    st.dictionaries(st.sampled_from(["py", "os"]), SCALARS, max_size=2), max_size=2
                ),
                "exclude": st.lists(st.dictionaries(st.just("py"), SCALARS, max_size=1), max_size=2),
            },
        ),
        "env": st.dictionaries(st.sampled_from(["A", "B"]), SCALARS, max_size=2),
        "timeout": SCALARS,
        "if": SCALARS,
        "needs": st.lists(st.sampled_from(["a", "b", "c"]), max_size=2),
        "resources": st.fixed_dictionaries(
            {}, optional={"memory": SCALARS, "cpus": SCALARS, "pids": SCALARS}
        ),
        "services": st.dictionaries(
            st.just("db"), st.dictionaries(st.sampled_from(["image", "command", "ready_timeout"]), STRUCTURES)
        ),
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), NEARLY_VALID_JOB, min_size=1, max_size=3))
def test_nearly_valid_pipelines(jobs: dict[str, Any]) -> None:
    load_or_error(to_yaml({"jobs": jobs}))


def test_renderer_round_trips_simple_values() -> None:
    from runner.config.yamlsource import parse_yaml

    value = {"jobs": {"t": {"steps": ["a", {"run": "b\nc", "env": {"K": 1.5}}], "if": False, "x": []}}}
    assert parse_yaml(to_yaml(value), "f").data == value
