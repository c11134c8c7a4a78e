"""Reading ci.yml: YAML text to plain Python values plus the line and column of every key and value.

We build values from ruamel.yaml's node graph ourselves instead of using its constructor, so
that we see every position (items of lists included), catch duplicate keys with both places,
and bound what aliases may expand to (a "billion laughs" file is refused, not expanded).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from runner.config.errors import ConfigError, Diagnostic
from runner.config.spec import Position

# A path to a value: mapping keys and list indexes from the document root.
YamlPath = tuple[str | int, ...]

MAX_BYTES = 256 * 1024
MAX_NODES = 20_000
MAX_ALIAS_NODES = 10_000
MAX_DEPTH = 64
FLOW_DEPTH_LIMIT = 4 * MAX_DEPTH

_TAG = "tag:yaml.org,2002:"
_TOO_MANY = f"document has too many lines or values (the limit is {MAX_NODES})"
_TOO_DEEP = f"YAML is nested too deeply (the limit is {MAX_DEPTH} levels)"


class SourceFloat(float):
    """A float that prints as it was written, so `3.10` stays `3.10` in names and env."""

    text: str

    def __new__(cls, value: float, text: str) -> SourceFloat:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Located:
    """Where a value sits: its key (for mapping entries) and the value itself."""

    key: Position | None
    value: Position


@dataclass
class YamlDocument:
    data: Any
    positions: dict[YamlPath, Located] = field(default_factory=dict)


class _Abort(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse one YAML document; raises ConfigError with positions for every problem found."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise ConfigError.at(file, 1, 1, f"file is too large ({size} bytes; the limit is {MAX_BYTES})")
    _check_flow_depth(text, file)
    if sum(text.count(c) for c in "\n,[{") > MAX_NODES:  # ruamel.yaml is slow: refuse before parsing
        raise ConfigError.at(file, 1, 1, _TOO_MANY)
    root = _compose(text, file)
    if root is None:
        raise ConfigError.at(file, 1, 1, "file is empty; a ci.yml needs at least a 'jobs' mapping")
    builder = _Builder(file)
    try:
        data = builder.build(root, (), None, 0)
    except _Abort as abort:
        raise ConfigError([*builder.errors, abort.diagnostic]) from None
    if builder.errors:
        raise ConfigError(builder.errors)
    return YamlDocument(data, builder.positions)


def _check_flow_depth(text: str, file: str) -> None:
    """Refuse deeply nested `[{` before ruamel.yaml's scanner, which slows down quadratically on them.

    Brackets are counted naively (inside strings and comments too), with a bound far above what
    any real file has, so this only stops hostile input early; MAX_DEPTH applies afterwards.
    """
    if text.count("[") + text.count("{") <= FLOW_DEPTH_LIMIT:
        return
    depth = 0
    for index, char in enumerate(text):
        if char in "[{":
            depth += 1
            if depth > FLOW_DEPTH_LIMIT:
                line, col = _line_col(text, index)
                raise ConfigError.at(file, line, col, _TOO_DEEP)
        elif char in "]}" and depth:
            depth -= 1


def _compose(text: str, file: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a reused anchor name, which YAML allows
            return YAML(typ="rt").compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise ConfigError.at(file, line, col, _syntax_message(exc)) from None
    except YAMLError as exc:
        position = getattr(exc, "position", None)
        line, col = _line_col(text, position) if isinstance(position, int) else (1, 1)
        reason = getattr(exc, "reason", None) or str(exc)
        raise ConfigError.at(file, line, col, f"YAML syntax error: {reason}") from None
    except RecursionError:
        raise ConfigError.at(file, 1, 1, _TOO_DEEP) from None
    except Exception as exc:  # ruamel.yaml has internal failures on some malformed input
        raise ConfigError.at(file, 1, 1, f"YAML syntax error: {exc}") from None


def _syntax_message(exc: Any) -> str:
    problem = str(exc.problem or exc.context or "invalid YAML")
    if "'\\t'" in problem:
        return "YAML syntax error: tab characters are not allowed for indentation; use spaces"
    context = f" ({exc.context})" if exc.problem and exc.context else ""
    return f"YAML syntax error: {problem}{context}"


def _line_col(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _pos(file: str, node: Any) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns composed nodes into dicts, lists and scalars while recording positions."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[YamlPath, Located] = {}
        self.errors: list[Diagnostic] = []
        self.nodes = 0
        self.alias_nodes = 0
        self.seen: set[int] = set()
        self.active: set[int] = set()
        self.alias_site: Position | None = None

    def error(self, node: Any, message: str) -> None:
        pos = _pos(self.file, node)
        self.errors.append(Diagnostic(pos.file, pos.line, pos.column, message))

    def abort(self, node: Any, message: str) -> _Abort:
        pos = _pos(self.file, node)
        return _Abort(Diagnostic(pos.file, pos.line, pos.column, message))

    def build(self, node: Any, path: YamlPath, key: Any, depth: int, in_alias: bool = False) -> Any:
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.abort(node, _TOO_MANY)
        if depth > MAX_DEPTH:
            raise self.abort(node, _TOO_DEEP)
        if id(node) in self.active:
            raise self.abort(node, "recursive YAML alias: an anchor cannot contain itself")
        if not in_alias and id(node) in self.seen:
            in_alias = True  # an alias: report overflows where it is used, not at its anchor
            parent = self.positions.get(path[:-1])
            self.alias_site = _pos(self.file, key) if key is not None else parent.value if parent else None
        if in_alias:
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                message = f"YAML aliases expand to too many values (the limit is {MAX_ALIAS_NODES})"
                site = self.alias_site or _pos(self.file, node)
                raise _Abort(Diagnostic(site.file, site.line, site.column, message))
        self.seen.add(id(node))
        self.positions[path] = Located(None if key is None else _pos(self.file, key), _pos(self.file, node))
        if isinstance(node, MappingNode):
            self.check_tag(node, "map")
            self.active.add(id(node))
            try:
                return self.mapping(node, path, depth, in_alias)
            finally:
                self.active.discard(id(node))
        if isinstance(node, SequenceNode):
            self.check_tag(node, "seq")
            self.active.add(id(node))
            try:
                items = enumerate(node.value)
                return [self.build(item, (*path, i), None, depth + 1, in_alias) for i, item in items]
            finally:
                self.active.discard(id(node))
        return self.scalar(node)

    def check_tag(self, node: Any, kind: str) -> None:
        if str(node.tag) != _TAG + kind:
            self.error(node, f"unsupported YAML tag '{node.tag}'")

    def mapping(self, node: Any, path: YamlPath, depth: int, in_alias: bool) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first: dict[str, Any] = {}
        for key_node, value_node in self.pairs(node, set()):
            name = self.key(key_node)
            if name is None:
                continue
            if name in result:
                where = f"line {first[name].start_mark.line + 1}, column {first[name].start_mark.column + 1}"
                self.error(key_node, f"duplicate key '{name}' (first defined at {where})")
                continue
            first[name] = key_node
            result[name] = self.build(value_node, (*path, name), key_node, depth + 1, in_alias)
        return result

    def pairs(self, node: Any, visiting: set[int]) -> list[tuple[Any, Any]]:
        """The mapping's own entries followed by entries merged in with `<<:` (own entries win)."""
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        if id(node) in visiting:
            raise self.abort(node, "recursive YAML merge: an anchor cannot merge itself")
        visiting = visiting | {id(node)}
        own: list[tuple[Any, Any]] = []
        merged: list[tuple[Any, Any]] = []
        for key_node, value_node in node.value:
            if str(key_node.tag) != _TAG + "merge":
                own.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.error(source, "'<<' merges only mappings (like <<: *defaults)")
                    continue
                merged.extend(self.pairs(source, visiting))
        names = {self.scalar_key_text(k) for k, _ in own}
        extra, taken = [], set()
        for key_node, value_node in merged:
            text = self.scalar_key_text(key_node)
            if text not in names and text not in taken:
                taken.add(text)
                extra.append((key_node, value_node))
        return own + extra

    @staticmethod
    def scalar_key_text(node: Any) -> str | None:
        from ruamel.yaml.nodes import ScalarNode

        return str(node.value) if isinstance(node, ScalarNode) else None

    def key(self, node: Any) -> str | None:
        from ruamel.yaml.nodes import ScalarNode

        if not isinstance(node, ScalarNode):
            self.error(node, "mapping keys must be plain strings, not lists or mappings")
            return None
        if str(node.tag) == _TAG + "null" and node.style is None:
            self.error(node, "empty mapping key")
            return None
        return str(node.value)

    def scalar(self, node: Any) -> Any:
        tag = str(node.tag)
        text = str(node.value)
        if tag in (_TAG + "str", _TAG + "timestamp"):
            return text
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return text.lower() in ("true", "yes", "on", "y")
        if tag == _TAG + "int":
            try:
                return _parse_int(text)
            except ValueError:
                self.error(node, f"cannot read '{text[:40]}' as a number; quote it to make it a string")
                return text
        if tag == _TAG + "float":
            return _parse_float(text)
        self.error(node, f"unsupported YAML tag '{tag}'")
        return text


def _parse_int(text: str) -> int:
    clean = text.replace("_", "")
    sign = -1 if clean.startswith("-") else 1
    digits = clean.lstrip("+-")
    if digits[:2].lower() in ("0x", "0o", "0b"):
        return sign * int(digits, 0)
    return sign * int(digits, 10)


def _parse_float(text: str) -> SourceFloat:
    low = text.lower().replace("_", "")
    if low.endswith(".inf"):
        value = -math.inf if low.startswith("-") else math.inf
    elif low.endswith(".nan"):
        value = math.nan
    else:
        value = float(low)
    return SourceFloat(value, text)


def find_position(
    positions: dict[YamlPath, Located], path: YamlPath, file: str, *, key: bool = False
) -> Position:
    """Where the value at `path` is (its key with `key`); else where the nearest enclosing value is."""
    for cut in range(len(path), -1, -1):
        located = positions.get(path[:cut])
        if located is not None:
            if (key or cut < len(path)) and located.key is not None:
                return located.key
            return located.value
    return Position(file, 1, 1)


def offset_position(lines: list[str], start: Position, value: str, offset: int) -> Position:
    """The position of `value[offset:]` in the source, when it can be found; else `start`.

    Works for plain and quoted one-line scalars and for block scalars (`|`, `>`) without escapes
    before `offset`; anything else falls back to where the value starts.
    """
    prefix = value[:offset]
    probe = value[offset : offset + 3]
    if "\n" not in prefix:
        line = lines[start.line - 1] if 0 < start.line <= len(lines) else ""
        for skip in (0, 1):
            at = start.column - 1 + skip
            if line.startswith(prefix + probe, at):
                return Position(start.file, start.line, start.column + skip + offset)
    row = prefix.count("\n")
    within = len(prefix) - (prefix.rfind("\n") + 1)
    wanted = value.split("\n")[row]
    for number in range(start.line + 1, min(start.line + row + 4, len(lines)) + 1):
        text = lines[number - 1]
        at = text.find(wanted) if wanted.strip() else -1
        if at != -1 and text.startswith(probe, at + within):
            return Position(start.file, number, at + within + 1)
    return start
