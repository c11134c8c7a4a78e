"""Matrix expansion with GitHub Actions' rules: product of the axes, then exclude, then include.

- `exclude` removes every combination whose values match all of the entry's keys.
- `include` adds its values to every combination whose *original* axis values it does not
  contradict (values added by an earlier include may be overwritten); an entry that fits no
  combination becomes a combination of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

MAX_COMBINATIONS = 256

Combination = dict[str, Any]


class MatrixError(ValueError):
    """The matrix cannot be expanded; `where` says which part (`axes`, `exclude`, `include`)."""

    def __init__(self, message: str, where: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.where = where


def _same(a: Any, b: Any) -> bool:
    """Matrix values compare as YAML wrote them, so `true` differs from `"true"` but 3 equals 3.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b) and isinstance(a, str) == isinstance(b, str)


def expand(
    axes: Mapping[str, Sequence[Any]],
    include: Sequence[Mapping[str, Any]] = (),
    exclude: Sequence[Mapping[str, Any]] = (),
) -> list[Combination]:
    """The job combinations of a matrix, in order; raises MatrixError when there are none or too many."""
    for index, entry in enumerate(exclude):
        for key in entry:
            if key not in axes:
                known = ", ".join(axes) or "none"
                message = f"'exclude' names '{key}', which is not an axis (axes: {known})"
                raise MatrixError(message, ("exclude", index, key))
    size = 1
    for values in axes.values():
        size *= len(values)
    if axes and size > MAX_COMBINATIONS * 4:
        raise MatrixError(f"has {size} combinations (the limit is {MAX_COMBINATIONS})")
    originals: list[Combination] = []
    if axes:
        names = list(axes)
        for values in itertools.product(*(axes[name] for name in names)):
            combo = dict(zip(names, values, strict=True))
            if not any(all(_same(combo[k], v) for k, v in entry.items()) for entry in exclude):
                originals.append(combo)
    extended = [dict(combo) for combo in originals]
    added: list[Combination] = []
    for entry in include:
        matched = False
        for original, combo in zip(originals, extended, strict=True):
            if all(k not in original or _same(original[k], v) for k, v in entry.items()):
                combo.update(entry)
                matched = True
        if not matched:
            added.append(dict(entry))
    result: list[Combination] = []
    for combo in extended + added:
        if not any(_equal(combo, seen) for seen in result):
            result.append(combo)
    if not result:
        raise MatrixError("produces no jobs (every combination is excluded or an axis is empty)")
    if len(result) > MAX_COMBINATIONS:
        raise MatrixError(f"produces {len(result)} jobs (the limit is {MAX_COMBINATIONS})")
    return result


def _equal(a: Combination, b: Combination) -> bool:
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


def value_text(value: Any) -> str:
    """A matrix value as it appears in job names and `JobSpec.matrix`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def job_name(base: str, combo: Combination) -> str:
    """`test (py: 3.12, os: x)`; a job without a matrix keeps its name."""
    if not combo:
        return base
    return f"{base} ({', '.join(f'{k}: {value_text(v)}' for k, v in combo.items())})"
