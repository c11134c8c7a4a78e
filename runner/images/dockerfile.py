"""Dockerfile parsing: stages of instructions, with line numbers, continuations and variable substitution.

The parser is purely syntactic (what a line says); the builder gives it meaning. Errors read
`Dockerfile:LINE: message`. Supported: FROM [--platform=] IMAGE [AS NAME], RUN, COPY/ADD [--from=]
[--chown=] [--chmod=], ENV, ARG, WORKDIR, USER, LABEL, ENTRYPOINT, CMD, EXPOSE, SHELL, STOPSIGNAL,
VOLUME (recorded), `# escape=` and `# syntax=` directives, heredoc-free shell and JSON forms.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from runner.images.errors import ImageError

KNOWN = {
    "FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "LABEL", "ENTRYPOINT", "CMD",
    "EXPOSE", "SHELL", "STOPSIGNAL", "VOLUME", "MAINTAINER", "HEALTHCHECK", "ONBUILD",
}  # fmt: skip
_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the rest of the line, continuations joined, not yet substituted
    line: int
    flags: dict[str, str] = field(default_factory=dict)  # --from=, --chown=, --chmod=, --platform=

    def json_form(self) -> list[str] | None:
        """The exec (JSON array) form of RUN/CMD/ENTRYPOINT/SHELL, or None for the shell form."""
        text = self.args.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                return None
            if isinstance(value, list) and all(isinstance(x, str) for x in value):
                return value
        return None


@dataclass
class Stage:
    base: str  # an image reference, `host`, `scratch`, or an earlier stage's name
    name: str | None
    index: int
    line: int
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    stages: list[Stage]
    global_args: list[Instruction]  # ARGs before the first FROM
    file: str = "Dockerfile"

    def stage(self, name_or_index: str) -> Stage | None:
        for stage in self.stages:
            if stage.name == name_or_index.lower() or str(stage.index) == name_or_index:
                return stage
        return None


def substitute(text: str, variables: dict[str, str]) -> str:
    """Expand $VAR, ${VAR}, ${VAR:-default} and ${VAR:+alternative} as Docker does (unset -> empty)."""

    def expand(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        value = variables.get(name)
        op = match.group("op")
        if op == "-":
            return value if value else substitute(match.group("word"), variables)
        if op == "+":
            return substitute(match.group("word"), variables) if value else ""
        return value or ""

    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        match = _VAR.match(text, i) if text[i] == "$" else None
        if match:
            out.append(expand(match))
            i = match.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _logical_lines(text: str, file: str) -> list[tuple[int, str]]:
    escape = "\\"
    lines = text.splitlines()
    for raw in lines[:5]:  # parser directives come first
        directive = re.match(r"^#\s*escape\s*=\s*(\S)\s*$", raw)
        if directive:
            escape = directive.group(1)
            break
        if not re.match(r"^#\s*\w+\s*=", raw):
            break
    out: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and (not stripped or stripped.startswith("#")):
            continue  # empty and comment lines inside a continued instruction are dropped, as Docker does
        if not current:
            start = number
        if raw.rstrip().endswith(escape):
            current.append(raw.rstrip()[:-1])
            continue
        current.append(raw)
        out.append((start, " ".join(part.strip() for part in current)))
        current = []
    if current:
        out.append((start, " ".join(part.strip() for part in current)))
    return out


def _flags(args: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    while True:
        match = re.match(r"^--([a-z-]+)=(\S*)\s*", args)
        if not match:
            return flags, args
        flags[match.group(1)] = match.group(2)
        args = args[match.end() :]


def parse(text: str, file: str = "Dockerfile") -> Dockerfile:
    stages: list[Stage] = []
    global_args: list[Instruction] = []
    for line, content in _logical_lines(text, file):
        keyword, _, rest = content.partition(" ")
        keyword = keyword.upper()
        if keyword not in KNOWN:
            raise ImageError(f"{file}:{line}: unknown instruction {keyword!r}")
        flags, rest = (
            _flags(rest.strip()) if keyword in {"FROM", "COPY", "ADD", "RUN"} else ({}, rest.strip())
        )
        instruction = Instruction(keyword, rest, line, flags)
        if keyword == "FROM":
            words = rest.split()
            if len(words) == 1:
                stages.append(Stage(words[0], None, len(stages), line))
            elif len(words) == 3 and words[1].lower() == "as":
                name = words[2].lower()
                if not re.fullmatch(r"[a-z][a-z0-9_.-]*", name):
                    raise ImageError(f"{file}:{line}: invalid stage name {words[2]!r}")
                if any(s.name == name for s in stages):
                    raise ImageError(f"{file}:{line}: duplicate stage name {words[2]!r}")
                stages.append(Stage(words[0], name, len(stages), line))
            else:
                raise ImageError(f"{file}:{line}: FROM takes an image and an optional `AS name`")
            continue
        if not stages:
            if keyword != "ARG":
                raise ImageError(f"{file}:{line}: {keyword} before the first FROM (only ARG may come first)")
            global_args.append(instruction)
            continue
        if not rest.strip() and keyword not in {"CMD", "ENTRYPOINT"}:
            raise ImageError(f"{file}:{line}: {keyword} needs arguments")
        stages[-1].instructions.append(instruction)
    if not stages:
        raise ImageError(f"{file}: no FROM instruction")
    return Dockerfile(stages, global_args, file)


def key_values(instruction: Instruction, variables: dict[str, str], file: str) -> list[tuple[str, str]]:
    """`ENV`/`LABEL`/`ARG` arguments as (key, value) pairs: `K=V K2="V 2"` or the legacy `K V` form."""
    text = instruction.args.strip()
    try:
        words = shlex.split(text, posix=True)
    except ValueError as exc:
        raise ImageError(f"{file}:{instruction.line}: {instruction.keyword}: {exc}") from None
    if not words:
        raise ImageError(f"{file}:{instruction.line}: {instruction.keyword} needs arguments")
    if instruction.keyword != "ARG" and "=" not in words[0]:
        key, _, value = text.partition(" ")  # legacy `ENV KEY value with spaces`
        return [(key, substitute(value.strip(), variables))]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            raise ImageError(f"{file}:{instruction.line}: invalid name {key!r} in {instruction.keyword}")
        pairs.append(
            (
                key,
                substitute(value, variables) if sep else ("\0unset" if instruction.keyword == "ARG" else ""),
            )
        )
    return pairs


def copy_args(instruction: Instruction, variables: dict[str, str], file: str) -> tuple[list[str], str]:
    """(sources, destination) of COPY/ADD, in the JSON or the whitespace form."""
    form = instruction.json_form()
    words = form if form is not None else instruction.args.split()
    words = [substitute(w, variables) for w in words]
    if len(words) < 2:
        raise ImageError(f"{file}:{instruction.line}: {instruction.keyword} needs a source and a destination")
    return words[:-1], words[-1]
