"""Fuzzing the `${{ }}` evaluator: any expression text gives a value or a positioned ConfigError.

test_config_fuzz.py reaches expressions only through a handful of fixed strings inside whole
pipelines; here the expressions themselves are generated from the tokens of Jinja's grammar, the
names of the context and the sandbox's favourite escape routes, and run through every entry point.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.config import ConfigError, evaluate
from runner.config.expressions import Namespace, check_syntax, evaluate_condition

VARS = {
    "matrix": Namespace("matrix", {"py": "3.12", "n": 2, "list": [1, 2]}),
    "env": Namespace("env", {"HOME_DIR": "/root", "EMPTY": ""}),
    "git": Namespace("git", {"branch": "main", "tag": "", "sha": "abc", "event": "push", "repo": "r"}),
    "job": Namespace("job", {"name": "test (py: 3.12)"}),
}
TOKENS = [
    *("matrix", "env", "git", "job", "matrix.py", "matrix.n", "env.HOME_DIR", "git.branch", "nope", "x"),
    *(".", "[", "]", "(", ")", "{", "}", ",", ":", "|", "~", "'", '"', "'a'", '"b"', "''"),
    *("+", "-", "*", "**", "/", "//", "%", "==", "!=", "<", ">=", "and", "or", "not", "in", "is"),
    *("if", "else", "0", "1", "2", "99999", "10", "1.5", "-1", "true", "false", "none", "None"),
    *("__class__", "__mro__", "__subclasses__", "__globals__", "__init__", "mro", "format", "attr"),
    *("length", "upper", "replace", "join", "list", "string", "int", "range", "lipsum", "cycler"),
    *("namespace", "self", "hash_files", "loop", "{{", "}}", "{%", "%}", "${{", "\\", "\n", " "),
]
EXPRESSIONS = st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join) | st.text(max_size=30)


def positioned(exc: ConfigError) -> None:
    assert exc.diagnostics, exc
    for d in exc.diagnostics:
        assert d.line >= 1 and d.column >= 1 and d.message and "Traceback" not in d.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS, st.sampled_from(["${{ %s }}", "pre ${{ %s }} post", "${{ %s }}${{ %s }}", "${{%s"]))
def test_any_expression_is_a_value_or_a_positioned_error(source: str, shape: str) -> None:
    text = shape.replace("%s", source)
    for native in (False, True):
        try:
            value = evaluate(text, VARS, native=native)
        except ConfigError as exc:
            positioned(exc)
        else:
            assert native or isinstance(value, str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_any_condition_is_a_boolean_or_an_error_naming_the_expression(source: str) -> None:
    from runner.config.expressions import ExpressionError

    for text in (source, f"${{{{ {source} }}}}"):
        try:
            assert isinstance(evaluate_condition(text, VARS), bool)
        except ExpressionError as exc:
            assert exc.message and exc.offset >= 0
        errors = check_syntax(text)
        assert all(e.message and e.offset >= 0 for e in errors)
