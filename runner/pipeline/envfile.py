"""The `$RUNNER_ENV` file: how a step exports variables to the steps after it.

A step appends `KEY=value` lines, or GitHub's multi-line form `KEY<<DELIM`, value lines, `DELIM`.
The file lives in a directory the container can write, so the host reads it defensively: no
following a symlink the step planted, no blocking on a FIFO, and a size cap.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

MAX_BYTES = 1 << 20  # an env file larger than this is truncated, with a warning
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse(text: str) -> tuple[dict[str, str], list[str]]:
    """The variables of an env file, and one warning per line that could not be understood."""
    values: dict[str, str] = {}
    warnings: list[str] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        line = lines[i].removesuffix("\r")
        number = i + 1
        i += 1
        if not line.strip():
            continue
        eq = line.find("=")
        heredoc = line.find("<<")
        if heredoc != -1 and (eq == -1 or heredoc < eq):
            name, delimiter = line[:heredoc].strip(), line[heredoc + 2 :].strip()
            if not _NAME.match(name) or not delimiter:
                warnings.append(f"RUNNER_ENV line {number}: expected NAME<<DELIMITER, got {line[:40]!r}")
                continue
            body: list[str] = []
            while i < len(lines) and lines[i].removesuffix("\r") != delimiter:
                body.append(lines[i].removesuffix("\r"))
                i += 1
            if i >= len(lines):
                warnings.append(
                    f"RUNNER_ENV line {number}: {name}<<{delimiter} is never closed by {delimiter}"
                )
                break
            i += 1  # the delimiter line
            values[name] = "\n".join(body)
            continue
        if eq == -1:
            warnings.append(f"RUNNER_ENV line {number}: expected NAME=value, got {line[:40]!r}")
            continue
        name = line[:eq].strip()
        if not _NAME.match(name):
            warnings.append(f"RUNNER_ENV line {number}: {name[:40]!r} is not a valid variable name")
            continue
        values[name] = line[eq + 1 :]
    return values, warnings


def reset(path: Path) -> None:
    """Make `path` a fresh, empty, regular file, whatever the previous step left there."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    os.fchmod(fd, 0o666)
    os.close(fd)


def read(path: Path) -> tuple[dict[str, str], list[str]]:
    """Parse the env file a step left at `path`; a missing file exports nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return {}, []
    except OSError as exc:
        return {}, [f"RUNNER_ENV was replaced by something that is not a file ({exc.strerror}); ignored"]
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {}, ["RUNNER_ENV was replaced by something that is not a regular file; ignored"]
        raw = b""
        while len(raw) <= MAX_BYTES:
            data = os.read(fd, MAX_BYTES + 1 - len(raw))
            if not data:
                break
            raw += data
    finally:
        os.close(fd)
    warnings: list[str] = []
    if len(raw) > MAX_BYTES:
        raw = raw[:MAX_BYTES]
        warnings.append(f"RUNNER_ENV is larger than {MAX_BYTES} bytes; the rest is ignored")
    values, more = parse(raw.decode("utf-8", errors="replace"))
    return values, warnings + more
