"""Diagnostics and ConfigError: the shape every caller and every message relies on."""

from __future__ import annotations

from runner.config import ConfigError, Diagnostic
from runner.config.diagnose import describe, got, suggestion


def test_diagnostic_text() -> None:
    assert str(Diagnostic("ci.yml", 7, 5, "unknown key")) == "ci.yml:7:5: unknown key"


def test_config_error_sorts_and_deduplicates() -> None:
    error = ConfigError(
        [Diagnostic("ci.yml", 9, 1, "b"), Diagnostic("ci.yml", 2, 3, "a"), Diagnostic("ci.yml", 9, 1, "b")]
    )
    assert [(d.line, d.column) for d in error.diagnostics] == [(2, 3), (9, 1)]
    assert str(error) == "ci.yml:2:3: a\nci.yml:9:1: b"
    assert ConfigError.at("f", 1, 2, "m").diagnostics == [Diagnostic("f", 1, 2, "m")]


def test_describe_names_the_place() -> None:
    assert describe(("jobs", "test")) == "job 'test'"
    assert describe(("jobs", "test", "timeout")) == "'timeout' in job 'test'"
    assert describe(("jobs", "test", "steps", 1)) == "step 2 of job 'test'"
    assert describe(("jobs", "test", "steps", 1, "env", "A")) == "'env.A' in step 2 of job 'test'"
    assert describe(("jobs", "t", "needs", 0)) == "item 1 of 'needs' in job 't'"
    assert (
        describe(("jobs", "t", "services", "db", "command", 2))
        == "item 3 of 'command' in service 'db' of job 't'"
    )
    assert describe(("jobs", "t", "image", "build", 0)) == "build step 1 of job 't'"
    assert describe(("image", "build", 0, "run")) == "'run' in build step 1 of the pipeline image"
    assert describe(("on", "push", "tags")) == "'tags' in 'on.push'"
    assert describe(("env", "A")) == "'env.A'"
    assert (
        describe(("jobs", "t", "matrix", "include", 0, "py"))
        == "'py' in item 1 of 'include' in the matrix of job 't'"
    )


def test_suggestions_and_value_descriptions() -> None:
    assert suggestion("stpes", ["steps", "needs"]) == " (did you mean 'steps'?)"
    assert suggestion("zzz", ["steps", "needs"]) == ""
    assert [got(v) for v in (None, True, 3, "x", [], {})] == [
        "empty",
        "a boolean",
        "the number 3",
        "the string 'x'",
        "a list",
        "a mapping",
    ]
    assert got("y" * 50) == "the string '" + "y" * 37 + "...'"
