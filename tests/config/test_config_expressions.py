"""`${{ }}` expressions: finding, evaluating, strict names and the sandbox."""

from __future__ import annotations

import re

import pytest

from runner.config import ConfigError, evaluate
from runner.config.expressions import (
    ExpressionError,
    Namespace,
    check_syntax,
    evaluate_condition,
    find_expressions,
    is_single_expression,
    to_text,
)
from runner.config.expressions import evaluate as raw_evaluate
from runner.config.spec import Position

VARS = {
    "matrix": Namespace("matrix", {"py": "3.12", "n": 2}),
    "env": Namespace("env", {"HOME_DIR": "/root"}),
    "git": Namespace("git", {"branch": "main", "tag": "", "sha": "abc", "event": "push", "repo": "r"}),
    "job": Namespace("job", {"name": "test (py: 3.12)"}),
}


def test_find_expressions_handles_quotes_and_nested_braces() -> None:
    text = "a ${{ 'x}}y' }} b ${{ {'k': {'v': 1}}['k'] }} c"
    spans = find_expressions(text)
    assert [s.source for s in spans] == ["'x}}y'", "{'k': {'v': 1}}['k']"]
    assert text[spans[0].start : spans[0].end] == "${{ 'x}}y' }}"
    assert find_expressions("no expressions, ${ HOME } and {{ jinja }}") == []


def test_unterminated_expression() -> None:
    with pytest.raises(ExpressionError) as caught:
        find_expressions("ok ${{ 'a' }} then ${{ git.sha")
    assert caught.value.offset == 19


def test_interpolation_renders_like_github() -> None:
    assert raw_evaluate("py${{ matrix.py }}-${{ matrix.n * 2 }}", VARS) == "py3.12-4"
    assert raw_evaluate("${{ git.branch == 'main' }}", VARS) == "true"
    assert raw_evaluate("[${{ none }}]", VARS) == "[]"
    assert raw_evaluate("${{ [1, 'a'] }}", VARS) == '[1, "a"]'
    assert raw_evaluate("${{ env.HOME_DIR | upper }}", VARS) == "/ROOT"
    assert raw_evaluate("plain text", VARS) == "plain text"


def test_single_expression_keeps_its_type() -> None:
    assert raw_evaluate("${{ git.branch == 'main' }}", VARS, native=True) is True
    assert raw_evaluate(" ${{ matrix.n }} ", VARS, native=True) == 2
    assert raw_evaluate("x ${{ matrix.n }}", VARS, native=True) == "x 2"
    assert is_single_expression("${{ a }}")
    assert not is_single_expression("${{ a }} ${{ b }}")


def test_conditions() -> None:
    assert evaluate_condition("${{ git.event == 'push' and matrix.n > 1 }}", VARS) is True
    assert evaluate_condition("git.branch != 'main'", VARS) is False  # bare, as GitHub allows
    assert evaluate_condition("${{ git.tag }}", VARS) is False
    assert evaluate_condition("${{ 'false' }}", VARS) is False


def test_undefined_names_are_errors_not_empty_strings() -> None:
    with pytest.raises(ExpressionError, match=r"'matrix' has no 'os' \(known: n, py\)"):
        raw_evaluate("${{ matrix.os }}", VARS)
    with pytest.raises(ExpressionError, match=r"unknown name 'gti' \(did you mean 'git'\?\)"):
        raw_evaluate("${{ gti.sha }}", VARS)
    with pytest.raises(ExpressionError, match="has no 'MISSING'"):
        raw_evaluate("x-${{ env.MISSING }}", VARS)
    with pytest.raises(ExpressionError, match="has no 'nope'"):
        raw_evaluate("${{ env.nope == '' }}", VARS)


@pytest.mark.parametrize(
    "source",
    [
        "''.__class__",
        "''.__class__.__mro__[1].__subclasses__()",
        "git.__class__",
        "git['__cl' ~ 'ass__']",
        "matrix.py.format",
        "'{0.__class__}'.format(git)",
        "job.name.upper.__globals__",
        "range.__self__",
        "cycler.__init__.__globals__",
        "lipsum.__globals__",
        "self.__init__.__globals__",
        "namespace",
    ],
)
def test_sandbox_escapes_fail(source: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        raw_evaluate("${{ " + source + " }}", VARS)
    assert re.search(r"is not allowed|unknown name|has no|failed: ", caught.value.message), (
        caught.value.message
    )


@pytest.mark.parametrize(
    "source",
    [
        "'a' * 10000000",
        "[1] * 10000000",
        "10 ** 100000",
        "range(10 ** 7) | list",
        "'{:>999999999}'.format(1)",
        "('x' * 50000) | replace('x', 'yyyyyyy')",
        "'x' | center(999999999)",
    ],
)
def test_resource_exhaustion_is_refused(source: str) -> None:
    with pytest.raises(ExpressionError):
        raw_evaluate("${{ " + source + " }}", VARS)


def test_check_syntax_finds_problems_without_running() -> None:
    messages = [
        p.message for p in check_syntax("a ${{ 1 + }} b ${{ foo }} c ${{ x | nofilter }} ${{ ''.__x }}")
    ]
    assert messages == [
        "invalid expression ${{ 1 + }}: unexpected end of expression",
        "unknown name 'foo' in expression ${{ foo }}",
        "unknown filter 'nofilter' in expression ${{ x | nofilter }}",
        "unknown name 'x' in expression ${{ x | nofilter }}",
        "expression ${{ ''.__x }} is not allowed: attribute '__x' is private",
    ]
    assert (
        check_syntax("${{ matrix.py ~ env.A | lower }} ${{ hash_files('*.txt') }} ${{ range(3) | list }}")
        == []
    )


def test_to_text() -> None:
    assert [to_text(v) for v in (None, True, False, 3, 1.5, "s", {"a": 1})] == [
        "",
        "true",
        "false",
        "3",
        "1.5",
        "s",
        '{"a": 1}',
    ]


def test_public_evaluate_positions_errors() -> None:
    assert evaluate("${{ matrix.n }}", VARS, native=True) == 2
    with pytest.raises(ConfigError) as caught:
        evaluate("ab ${{ nope }}", VARS)
    assert str(caught.value) == "<expression>:1:4: in expression ${{ nope }}: unknown name 'nope'"
    with pytest.raises(ConfigError) as caught:
        evaluate("${{ nope }}", VARS, position=Position("ci.yml", 3, 7))
    assert str(caught.value).startswith("ci.yml:3:7: ")
