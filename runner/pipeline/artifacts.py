"""Artifacts: files a job's workspace matches by glob, copied out to `artifacts_dir/<job>/`.

The workspace was written by the job, so nothing in it is trusted: the tree is walked without
following symlinks, a symlink is only followed when it resolves inside the workspace, and files
are opened with O_NOFOLLOW. A symlink pointing out (say to /etc/passwd) is skipped with a warning.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Collected:
    stored: list[tuple[str, int]] = field(default_factory=list)  # (relative path, size)
    warnings: list[str] = field(default_factory=list)


def job_dirname(job: str) -> str:
    """A job name as one path component (matrix values may contain `/`)."""
    name = job.replace("/", "_").replace("\0", "_")
    return "_" + name if name in ("", ".", "..") else name


def compile_glob(pattern: str) -> re.Pattern[str] | None:
    """A glob relative to the workspace as a regex over `/`-separated relative paths.

    `*` and `?` stay within one path component, `**` crosses them, `[...]` is a class. A pattern
    that names a directory (with or without a trailing `/`) selects everything under it. Returns
    None for a pattern that leaves the workspace (absolute, or with a `..` component).
    """
    pattern = pattern.strip()
    while pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern.rstrip("/")
    if not pattern or pattern.startswith("/") or ".." in pattern.split("/"):
        return None
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and (end := pattern.find("]", i + 2)) != -1 and pattern[i + 1 : end] not in ("!",):
            # `]` right after `[` or `[!` is a literal member of the class
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\").replace("/", "") + "]")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    # a match may be the path itself or any path under it (a directory selects its contents)
    try:
        return re.compile("".join(out) + "(?:/.*)?")
    except re.error:  # an odd character class: take the pattern literally
        return re.compile(re.escape(pattern) + "(?:/.*)?")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def collect(workspace: Path, patterns: tuple[str, ...] | list[str], dest: Path) -> Collected:
    """Copy every workspace file matching one of `patterns` to `dest/<relative path>`."""
    result = Collected()
    regexes = []
    for pattern in patterns:
        regex = compile_glob(pattern)
        if regex is None:
            result.warnings.append(f"artifact pattern {pattern!r} leaves the workspace; ignored")
        else:
            regexes.append((pattern, regex))
    if not regexes:
        return result
    root = os.path.realpath(workspace)
    matched: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in [*sorted(filenames), *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))]:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if any(regex.fullmatch(rel) for _, regex in regexes):
                matched.add(rel)
    used = {pattern for pattern, regex in regexes if any(regex.fullmatch(rel) for rel in matched)}
    for pattern, _ in regexes:
        if pattern not in used:
            result.warnings.append(f"artifact pattern {pattern!r} matched no file")
    for rel in sorted(matched):
        _store(root, rel, dest, result)
    return result


def _store(root: str, rel: str, dest: Path, result: Collected) -> None:
    source = os.path.join(root, rel)
    info = os.lstat(source)
    if stat.S_ISLNK(info.st_mode):
        target = os.path.realpath(source)
        if not _inside(target, root):
            result.warnings.append(
                f"artifact {rel} is a symlink to {os.readlink(source)}, outside the workspace; skipped"
            )
            return
        try:
            info = os.stat(target)
        except OSError:
            result.warnings.append(f"artifact {rel} is a dangling symlink; skipped")
            return
        if not stat.S_ISREG(info.st_mode):
            result.warnings.append(f"artifact {rel} is a symlink to something other than a file; skipped")
            return
        source = target
    elif not stat.S_ISREG(info.st_mode):
        result.warnings.append(f"artifact {rel} is not a regular file; skipped")
        return
    out = dest / rel
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as src, open(out, "wb") as dst:
            if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
                raise OSError(f"{rel} changed while being copied")
            shutil.copyfileobj(src, dst, 1 << 20)
            size = dst.tell()
        os.chmod(out, stat.S_IMODE(info.st_mode) & 0o755 | 0o644)
    except OSError as exc:
        result.warnings.append(f"artifact {rel} could not be copied: {exc.strerror or exc}")
        return
    result.stored.append((rel, size))
