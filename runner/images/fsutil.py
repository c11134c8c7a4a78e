"""Filesystem primitives the store is made of: flock locks, atomic writes and renames, disk usage."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def flocked(path: Path, *, exclusive: bool = True, blocking: bool = True) -> Iterator[bool]:
    """Hold an advisory lock on `path` (created if missing). Yields False when not blocking and it is taken.

    Lock files are never deleted: deleting one while another process waits on it would let two holders in.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        op = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        if not blocking:
            op |= fcntl.LOCK_NB
        try:
            fcntl.flock(fd, op)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data` so a reader sees the old or the new content, never a mix.

    `durable=False` skips the fsync, for bookkeeping (such as last-used times) a crash may lose.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, value: Any, *, durable: bool = True) -> None:
    atomic_write(path, json.dumps(value, indent=1, sort_keys=True).encode(), durable=durable)


def read_json(path: Path) -> Any:
    """The JSON at `path`, or None when the file does not exist."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None


def remove_tree(path: Path, tmp_root: Path) -> None:
    """Make `path` disappear at once (rename into `tmp_root`), then delete it at leisure."""
    if not path.exists() and not path.is_symlink():
        return
    tmp_root.mkdir(parents=True, exist_ok=True)
    doomed = Path(tempfile.mkdtemp(prefix="rm-", dir=tmp_root))
    os.rename(path, doomed / "x")
    shutil.rmtree(doomed, ignore_errors=True)


def disk_usage(path: Path) -> int:
    """Bytes allocated under `path`, each hard-linked inode counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0

    def count(entry: str) -> None:
        nonlocal total
        st = os.lstat(entry)
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512

    count(str(path))
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            count(os.path.join(dirpath, name))
    return total
