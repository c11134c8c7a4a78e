"""Diagnostics and the one exception every part of `runner.config` raises: `ConfigError`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in a ci.yml, printed as `ci.yml:7:5: message` (line and column are 1-based)."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class ConfigError(Exception):
    """A ci.yml that cannot be loaded or compiled; `str()` lists every diagnostic, one a line."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        unique = sorted(set(diagnostics), key=lambda d: (d.file, d.line, d.column, d.message))
        self.diagnostics: list[Diagnostic] = unique
        super().__init__("\n".join(str(d) for d in unique))

    @classmethod
    def at(cls, file: str, line: int, column: int, message: str) -> ConfigError:
        """An error with a single diagnostic."""
        return cls([Diagnostic(file, line, column, message)])

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)
