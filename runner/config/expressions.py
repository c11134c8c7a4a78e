"""`${{ expr }}` in ci.yml strings: finding, checking and evaluating them in a Jinja2 sandbox.

Names that are not defined raise (StrictUndefined) instead of rendering as empty strings, and
the sandbox refuses attribute tricks (`''.__class__`) and operations that build huge values.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

START = "${{"
END = "}}"
CONTEXT_NAMES = ("env", "git", "hash_files", "job", "matrix")
MAX_RESULT = 100_000  # characters or items an operation in an expression may produce

_SAFE_FILTERS = [
    *("abs", "capitalize", "count", "d", "default", "first", "float", "int", "join", "last", "length"),
    *("list", "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round"),
    *("select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "truncate", "unique"),
    *("upper", "urlencode"),
]
_UNSAFE_STR_METHODS = frozenset({"format", "format_map", "center", "ljust", "rjust", "zfill", "expandtabs"})


_SECRETS_HINT = " (secrets never enter expressions: list them under 'secrets:' and read $NAME in the step)"


class ExpressionError(Exception):
    """A broken or failing expression; `offset` is where in the string it starts."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class Span:
    """One `${{ source }}` in a string, from `start` up to (not including) `end`."""

    start: int
    end: int
    source: str


class Namespace(dict[str, Any]):
    """A context (`matrix`, `env`, ...) that names itself in 'undefined' messages."""

    def __init__(self, label: str, values: dict[str, Any]) -> None:
        super().__init__(values)
        self._label = label


def find_expressions(text: str) -> list[Span]:
    """Every `${{ ... }}` in `text`; `}}` inside quotes or nested braces does not end one."""
    spans: list[Span] = []
    index = text.find(START)
    while index != -1:
        end = _closing(text, index + len(START))
        if end is None:
            raise ExpressionError("unterminated expression: '${{' without a matching '}}'", index)
        spans.append(Span(index, end + len(END), text[index + len(START) : end].strip()))
        index = text.find(START, end + len(END))
    return spans


def _closing(text: str, pos: int) -> int | None:
    depth, quote, i = 0, "", pos
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif text.startswith(END, i) and depth == 0:
            return i
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        i += 1
    return None


def is_single_expression(text: str) -> bool:
    """True when `text` is exactly one `${{ }}` (surrounding blanks aside)."""
    try:
        spans = find_expressions(text.strip())
    except ExpressionError:
        return False
    return len(spans) == 1 and spans[0].start == 0 and spans[0].end == len(text.strip())


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import missing

    class Undefined(StrictUndefined):
        @property
        def _undefined_message(self) -> str:
            obj, name = self._undefined_obj, self._undefined_name
            if self._undefined_hint:
                return self._undefined_hint
            if obj is missing:
                return f"unknown name '{name}'{_suggest(str(name), CONTEXT_NAMES)}"
            if isinstance(obj, Namespace):
                known = ", ".join(sorted(obj)) or "none"
                return f"'{obj._label}' has no {name!r} (known: {known})"
            return f"{type(obj).__name__} value has no attribute {name!r}"

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
            if isinstance(obj, str) and attr in _UNSAFE_STR_METHODS:
                return False
            return bool(super().is_safe_attribute(obj, attr, value))

        def wrap_str_format(self, value: Any) -> None:
            return None  # `format` is refused by is_safe_attribute: padding can build huge strings

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

    env = Sandbox(undefined=Undefined, autoescape=False)
    env.filters = {name: env.filters[name] for name in _SAFE_FILTERS}
    env.filters["replace"] = _replace
    env.globals = {"range": env.globals["range"], "dict": env.globals["dict"]}
    return env


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "**" and isinstance(left, int | float) and isinstance(right, int | float):
        magnitude = abs(float(left)) if left else 0.0
        if magnitude > 1 and right > 0 and right * math.log2(magnitude) > 256:
            raise ExpressionError("number too large in '**'")
    if operator == "*":
        for seq, count in ((left, right), (right, left)):
            sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
            if sized and len(seq) * count > MAX_RESULT:
                raise ExpressionError(f"result of '*' too long (the limit is {MAX_RESULT})")


def _replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(value)
    grown = text.count(str(old)) * max(len(str(new)) - len(str(old)), 0) if old else len(text) * len(str(new))
    if len(text) + grown > MAX_RESULT:
        raise ExpressionError(f"result of 'replace' too long (the limit is {MAX_RESULT})")
    return text.replace(str(old), str(new), -1 if count is None else count)


def _show(source: str) -> str:
    return "${{ " + source + " }}"


def _suggest(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _syntax_message(source: str, exc: Any) -> str:
    detail = str(exc.message or "syntax error").replace("'end of template'", "end of expression")
    return f"invalid expression {_show(source)}: {detail}"


@lru_cache(maxsize=512)
def _parse(source: str) -> Any:
    """The template AST of one expression (for static checks; nothing is compiled or run)."""
    from jinja2 import TemplateSyntaxError
    from jinja2.parser import Parser

    if not source:
        raise ExpressionError("empty expression '${{ }}'")
    try:
        parser = Parser(_environment(), source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            raise TemplateSyntaxError(f"unexpected '{token.value}' after the expression", token.lineno)
        return expr
    except TemplateSyntaxError as exc:
        raise ExpressionError(_syntax_message(source, exc)) from None
    except RecursionError:
        raise ExpressionError(f"expression {_show(source)} is nested too deeply") from None


@lru_cache(maxsize=512)
def _compile(source: str) -> Any:
    from jinja2 import TemplateSyntaxError
    from jinja2.exceptions import SecurityError

    if not source:
        raise ExpressionError("empty expression '${{ }}'")
    try:
        return _environment().compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise ExpressionError(_syntax_message(source, exc)) from None
    except RecursionError:
        raise ExpressionError(f"expression {_show(source)} is nested too deeply") from None
    except SecurityError as exc:
        raise ExpressionError(f"expression {_show(source)} is not allowed: {exc}") from None


def check_syntax(text: str) -> list[ExpressionError]:
    """Syntax errors and unknown top-level names in every expression of `text` (nothing is run)."""
    from jinja2 import nodes

    try:
        spans = find_expressions(text)
    except ExpressionError as exc:
        return [exc]
    problems: list[ExpressionError] = []
    for span in spans:
        try:
            ast = _parse(span.source)
        except ExpressionError as exc:
            problems.append(ExpressionError(exc.message, span.start))
            continue
        for node in [ast, *ast.find_all((nodes.Getattr, nodes.Getitem))]:
            if not isinstance(node, nodes.Getattr | nodes.Getitem):
                continue
            attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            if isinstance(attr, str) and attr.startswith("_"):
                message = f"expression {_show(span.source)} is not allowed: attribute '{attr}' is private"
                problems.append(ExpressionError(message, span.start))
        env = _environment()
        for node in [ast, *ast.find_all((nodes.Filter, nodes.Test))]:
            if isinstance(node, nodes.Filter) and node.name not in env.filters:
                hint = _suggest(node.name, env.filters)
                message = f"unknown filter '{node.name}' in expression {_show(span.source)}{hint}"
                problems.append(ExpressionError(message, span.start))
            elif isinstance(node, nodes.Test) and node.name not in env.tests:
                hint = _suggest(node.name, env.tests)
                message = f"unknown test '{node.name}' in expression {_show(span.source)}{hint}"
                problems.append(ExpressionError(message, span.start))
        names = {node.name for node in [ast, *ast.find_all(nodes.Name)] if isinstance(node, nodes.Name)}
        for name in sorted(names - {*CONTEXT_NAMES, "range", "dict", "true", "false", "none"}):
            hint = _SECRETS_HINT if name == "secrets" else _suggest(name, CONTEXT_NAMES)
            message = f"unknown name '{name}' in expression {_show(span.source)}{hint}"
            problems.append(ExpressionError(message, span.start))
    return problems


def to_text(value: Any) -> str:
    """How an expression's value reads inside a string: `true`, `3.10`, `""` for null, JSON for lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, default=str)
    return str(value)


def evaluate(text: str, variables: dict[str, Any], *, native: bool = False) -> Any:
    """Replace every `${{ }}` in `text`; with `native`, a lone expression keeps its type (for `if:`).

    Raises ExpressionError (with the offset of the failing expression) for any failure.
    """
    spans = find_expressions(text)
    if not spans:
        return text
    if native and is_single_expression(text):
        return _run(spans[0], variables)
    parts: list[str] = []
    last = 0
    for span in spans:
        parts.append(text[last : span.start])
        parts.append(to_text(_run(span, variables)))
        last = span.end
    parts.append(text[last:])
    return "".join(parts)


def evaluate_condition(text: str, variables: dict[str, Any]) -> bool:
    """An `if:` value: `${{ expr }}`, or a bare expression as GitHub Actions allows."""
    if START not in text:
        return _truthy(_run(Span(0, len(text), text.strip()), variables))
    return _truthy(evaluate(text, variables, native=True))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "off", "null")
    return bool(value)


def _run(span: Span, variables: dict[str, Any]) -> Any:
    from jinja2.exceptions import SecurityError, UndefinedError
    from jinja2.runtime import Undefined

    try:
        compiled = _compile(span.source)
        result = compiled(**variables)
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()
        return result
    except ExpressionError as exc:
        raise ExpressionError(exc.message, span.start) from None
    except UndefinedError as exc:
        raise ExpressionError(f"in expression {_show(span.source)}: {exc.message}", span.start) from None
    except SecurityError as exc:
        raise ExpressionError(f"expression {_show(span.source)} is not allowed: {exc}", span.start) from None
    except RecursionError:
        raise ExpressionError(f"expression {_show(span.source)} is nested too deeply", span.start) from None
    except Exception as exc:
        raise ExpressionError(f"expression {_show(span.source)} failed: {exc}", span.start) from None
