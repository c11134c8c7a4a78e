"""`hash_files(*globs)`: one sha256 over the matched workspace files, for cache keys.

Files are found by walking the workspace without following symlinked directories; a symlinked
file counts only when it points inside the workspace, otherwise its link text is hashed. `.git`
is never walked. No match gives an empty string, as GitHub's `hashFiles` does.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from functools import lru_cache
from pathlib import Path

from runner.config.expressions import ExpressionError

MAX_FILES = 50_000


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a workspace glob: `*` and `?` stay in one path segment, `**` spans any number."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            close = pattern.find("]", i + 2)
            if close == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : close].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"(?!/)[{body}]")
                i = close
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def _check_pattern(pattern: str) -> str:
    clean = pattern.strip()
    while clean.startswith("./"):
        clean = clean[2:]
    if not clean:
        raise ExpressionError("hash_files() needs a non-empty pattern")
    if clean.startswith("/") or ".." in clean.split("/"):
        raise ExpressionError(f"hash_files() patterns stay inside the workspace: '{pattern}'")
    return clean.rstrip("/")


def _may_hold_matches(segments: list[str], parts: list[str]) -> bool:
    """Whether paths below the directory `parts` can match the pattern split into `segments`."""
    for index, part in enumerate(parts):
        if index >= len(segments):
            return False
        if "**" in segments[index]:
            return True
        if not glob_regex(segments[index]).fullmatch(part):
            return False
    return len(segments) > len(parts)


def matching_files(workspace: Path, patterns: tuple[str, ...]) -> list[str]:
    """Relative POSIX paths of the regular files (and symlinks) under `workspace` matching any pattern.

    Directories that no pattern can reach are not entered, so `requirements*.txt` reads one directory.
    """
    cleaned = [_check_pattern(p) for p in patterns]
    regexes = [glob_regex(p) for p in cleaned]
    segments = [p.split("/") for p in cleaned]
    root = str(workspace)
    found: list[str] = []
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        parts = prefix.split("/")[:-1]
        names = filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = [
            d
            for d in dirnames
            if not (not prefix and d == ".git") and any(_may_hold_matches(s, [*parts, d]) for s in segments)
        ]
        for name in names:
            seen += 1
            if seen > MAX_FILES:
                raise ExpressionError(f"hash_files() looked at over {MAX_FILES} files; use narrower patterns")
            rel = prefix + name
            if any(rx.fullmatch(rel) for rx in regexes):
                found.append(rel)
    return sorted(found)


def hash_files(workspace: Path | None, patterns: tuple[str, ...]) -> str:
    """sha256 hex over the sorted matches' relative paths and contents; "" when nothing matches."""
    if not patterns:
        raise ExpressionError("hash_files() needs at least one pattern")
    if workspace is None:
        return ""
    workspace = workspace.resolve()
    files = matching_files(workspace, tuple(str(p) for p in patterns))
    if not files:
        return ""
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(_content_digest(workspace, workspace / rel))
    return digest.hexdigest()


def _content_digest(workspace: Path, path: Path) -> bytes:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        target = path.resolve()
        inside = target == workspace or workspace in target.parents
        if not inside or not target.is_file():
            return b"link:" + os.readlink(path).encode("utf-8", "surrogateescape")
        path = target
    elif not stat.S_ISREG(info.st_mode):
        return b"special"
    file_digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            file_digest.update(block)
    return file_digest.digest()
