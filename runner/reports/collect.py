"""Finding a job's report files by glob inside its workspace and parsing each, never leaving the workspace.

A job controls its workspace, so a report path may be a symlink to ``/etc/shadow`` or a FIFO that never
ends; both are skipped with a warning. A broken file is a warning too: the rest still count.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath
from typing import Final

from runner.reports.errors import ReportError
from runner.reports.junit import parse_junit
from runner.reports.model import TestCase

#: Top-level folders never searched: the runner's own output (earlier runs' merged junit.xml) and git.
_SKIPPED_TOP: Final = frozenset({".runner", ".git"})


def collect(workspace: Path, globs: list[str], job: str) -> tuple[list[TestCase], list[str]]:
    """The test cases of every report matching ``globs`` (relative to ``workspace``), tagged with ``job``.

    Returns ``(cases, warnings)``; each warning is one line naming the file or pattern. A glob that
    matches a directory takes the ``*.xml`` files below it. Files are read once each, in path order.
    """
    root = workspace.resolve()
    warnings: list[str] = []
    cases: list[TestCase] = []
    read: set[Path] = set()
    for relative in _matches(root, globs, warnings):
        display = relative.as_posix()
        target, problem = _inside(root, root / relative)
        if target is None:
            warnings.append(f"{display}: skipped: {problem}")
            continue
        if target in read:  # a link to a file already counted under its own name
            continue
        read.add(target)
        try:
            found = parse_junit(target, source=display)
        except ReportError as exc:
            warnings.append(f"{exc}; skipped")
            continue
        for case in found:
            case.job = job
        cases.extend(found)
    return cases, warnings


def _matches(root: Path, globs: list[str], warnings: list[str]) -> list[PurePosixPath]:
    """Workspace-relative paths of the files the patterns name, without duplicates, sorted."""
    seen: set[PurePosixPath] = set()
    for pattern in globs:
        problem = _bad_pattern(pattern)
        if problem:
            warnings.append(f"report pattern {pattern!r}: {problem}")
            continue
        hits = 0
        try:
            matches = sorted(root.glob(pattern))
        except (OSError, ValueError, NotImplementedError) as exc:
            warnings.append(f"report pattern {pattern!r}: {exc}")
            continue
        for match in matches:
            try:
                expanded = _expand(match)
            except OSError as exc:
                warnings.append(f"report pattern {pattern!r}: {exc.strerror or exc}")
                continue
            for path in expanded:
                relative = PurePosixPath(path.relative_to(root).as_posix())
                if relative.parts and relative.parts[0] in _SKIPPED_TOP:
                    continue
                hits += 1
                seen.add(relative)
        if not hits:
            warnings.append(f"report pattern {pattern!r}: no files match")
    return sorted(seen)


def _expand(match: Path) -> list[Path]:
    """A matched file as itself; a matched (real) directory as the XML files below it."""
    if match.is_dir() and not match.is_symlink():
        return sorted(p for p in match.rglob("*.xml") if not p.is_dir())
    return [match]


def _bad_pattern(pattern: str) -> str:
    if not pattern.strip():
        return "empty pattern"
    if pattern.startswith(("/", "\\")) or ":" in pattern.split("/", 1)[0]:
        return "must be relative to the workspace"
    if ".." in PurePosixPath(pattern).parts:
        return "must not contain '..'"
    return ""


def _inside(root: Path, path: Path) -> tuple[Path | None, str]:
    """``(path with every link resolved, "")`` for a regular file inside ``root``, else ``(None, why)``."""
    try:
        target = Path(os.path.realpath(path))
    except (OSError, RuntimeError):
        return None, "cannot resolve the path (a symlink loop?)"
    if not target.is_relative_to(root):
        return None, "it is a link to a place outside the workspace"
    try:
        info = target.stat()
    except OSError as exc:
        return None, f"cannot read it: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return None, "not a regular file"
    return target, ""
