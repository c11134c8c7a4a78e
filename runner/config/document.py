"""`load()`: a ci.yml file to a validated `Document` (YAML, then the models, then cross checks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runner.config.checks import Checker
from runner.config.diagnose import Translator
from runner.config.errors import ConfigError, Diagnostic
from runner.config.models import Pipeline
from runner.config.spec import Position
from runner.config.yamlsource import Located, YamlPath, find_position, offset_position, parse_yaml


@dataclass
class Document:
    """A validated ci.yml: the model, the plain data it came from, and where each value is."""

    file: str
    model: Pipeline
    data: dict[str, Any]
    positions: dict[YamlPath, Located] = field(repr=False)
    lines: list[str] = field(repr=False)

    @property
    def job_names(self) -> list[str]:
        """The keys under `jobs:`, in file order (before matrix expansion)."""
        return list(self.model.jobs)

    def position(self, path: YamlPath, *, key: bool = False) -> Position:
        """Where the value (or, with `key`, its key) at `path` is; the nearest enclosing value otherwise."""
        return find_position(self.positions, path, self.file, key=key)

    def text_position(self, path: YamlPath, value: str, offset: int) -> Position:
        """Where character `offset` of the string at `path` is, as closely as the source allows."""
        return offset_position(self.lines, self.position(path), value, offset)


def read_text(path: Path) -> str:
    """The file's text; ConfigError when it cannot be read or is not UTF-8."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError.at(file, 1, 1, "file not found") from None
    except IsADirectoryError:
        raise ConfigError.at(file, 1, 1, "is a directory, not a ci.yml file") from None
    except OSError as exc:
        raise ConfigError.at(file, 1, 1, f"cannot read file: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise ConfigError.at(file, line, column, "file is not valid UTF-8 text") from None


def _without_echoes(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Drop "missing required key 'steps'" when "unknown key 'stpes' ... (did you mean 'steps'?)" says it."""
    suggested = {d.message.rsplit("'", 2)[-2] for d in diagnostics if d.message.endswith("'?)")}
    return [
        d
        for d in diagnostics
        if not (d.message.startswith("missing required key '") and d.message.split("'")[1] in suggested)
    ]


def load(path: Path, *, text: str | None = None) -> Document:
    """Parse and validate a ci.yml; raises ConfigError listing every problem found."""
    file = str(path)
    if text is None:
        text = read_text(path)
    source = parse_yaml(text, file)
    data = source.data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise ConfigError.at(file, 1, 1, f"a ci.yml must be a mapping with a 'jobs' key, not {kind}")
    lines = text.splitlines()
    diagnostics: list[Diagnostic] = []
    model: Pipeline | None = None
    try:
        model = Pipeline.model_validate(data)
    except ValidationError as exc:
        translator = Translator(file, data, source.positions)
        diagnostics.extend(_without_echoes([translator.translate(dict(error)) for error in exc.errors()]))
    diagnostics.extend(Checker(file, data, source.positions, lines).run())
    if diagnostics or model is None:
        raise ConfigError(diagnostics)
    return Document(file, model, data, source.positions, lines)
