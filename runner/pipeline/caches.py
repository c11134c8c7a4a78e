"""The cache store: one directory per cache key under `paths.caches`, kept within an LRU size budget.

An entry is `<caches>/<name>/` holding `meta.json` (key, paths, size) and `data/<i>`, a copy of
the i-th cached path as the job saw it. An entry is written in a temporary directory and
published by one atomic rename, so concurrent saves of a key are safe: the first wins, the
others are dropped. Reading an entry touches `meta.json`; eviction drops the least recently
used entries until the total fits `RUNNER_CACHE_MAX_BYTES` (default 5 GiB).

The copying itself happens inside a container over the job's filesystem (see `restore_script`
and `save_script`), so a cached path is whatever the job saw at that path and no symlink the
job planted can make the host read or write outside the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.config.spec import CacheSpec
from runner.sandbox import Mount, Result

DEFAULT_MAX_BYTES = 5 << 30
MOUNT = "/run/runner-cache"  # where an entry's data (or a save's scratch dir) appears in the container


def max_bytes() -> int:
    """RUNNER_CACHE_MAX_BYTES: a byte count, optionally with a K/M/G/T suffix (powers of 1024)."""
    value = os.environ.get("RUNNER_CACHE_MAX_BYTES", "").strip()
    match = re.fullmatch(r"(\d+)\s*([kKmMgGtT]?)(?:i?[bB])?", value)
    if not match:
        return DEFAULT_MAX_BYTES
    unit = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[match.group(2).lower()]
    return int(match.group(1)) << (10 * unit)


def entry_name(key: str) -> str:
    """A short, safe directory name for a key: a readable prefix and a hash of the whole key."""
    prefix = re.sub(r"[^A-Za-z0-9._-]", "_", key)[:40].lstrip(".")
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def container_path(path: str) -> str:
    """Where a cache path lives in the container: absolute as is, relative under /workspace."""
    return os.path.normpath(path if path.startswith("/") else f"/workspace/{path}")


@dataclass(frozen=True)
class Entry:
    key: str
    dir: Path
    paths: tuple[str, ...]
    size: int

    @property
    def data(self) -> Path:
        return self.dir / "data"


class CacheStore:
    def __init__(self, root: Path, budget: int | None = None) -> None:
        self.root = root
        self.budget = max_bytes() if budget is None else budget

    def _ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure()
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self, directory: Path) -> Entry | None:
        try:
            meta = json.loads((directory / "meta.json").read_text())
            return Entry(str(meta["key"]), directory, tuple(meta["paths"]), int(meta["size"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def lookup(self, key: str) -> Entry | None:
        """The entry for `key`, marked as just used; None on a miss."""
        entry = self._read(self.root / entry_name(key))
        if entry is None or entry.key != key:
            return None
        with contextlib.suppress(OSError):
            os.utime(entry.dir / "meta.json")
        return entry

    def scratch(self) -> Path:
        """A fresh directory to save an entry into; its `data/` is what the container fills."""
        self._ensure()
        directory = self.root / f".tmp-{uuid.uuid4().hex}"
        (directory / "data").mkdir(parents=True)
        return directory

    def commit(self, key: str, paths: tuple[str, ...], scratch: Path) -> Entry | None:
        """Publish `scratch` as the entry for `key`; None if another save got there first."""
        size = tree_size(scratch / "data")
        (scratch / "meta.json").write_text(json.dumps({"key": key, "paths": list(paths), "size": size}))
        target = self.root / entry_name(key)
        try:
            os.rename(scratch, target)
        except OSError:  # ENOTEMPTY/EEXIST: the first save of this key won
            shutil.rmtree(scratch, ignore_errors=True)
            return None
        entry = Entry(key, target, paths, size)
        self.evict()
        return entry

    def discard(self, scratch: Path) -> None:
        shutil.rmtree(scratch, ignore_errors=True)

    def entries(self) -> list[tuple[float, Entry]]:
        """Every published entry with its last-use time, least recently used first."""
        found: list[tuple[float, Entry]] = []
        if not self.root.is_dir():
            return found
        for child in self.root.iterdir():
            if child.name.startswith("."):
                continue
            entry = self._read(child)
            if entry is None:
                continue
            try:
                used = (child / "meta.json").stat().st_mtime_ns / 1e9
            except OSError:
                continue
            found.append((used, entry))
        found.sort(key=lambda item: item[0])
        return found

    def evict(self) -> list[str]:
        """Drop least recently used entries until the store fits its budget; returns their keys."""
        dropped: list[str] = []
        with self._locked():
            entries = self.entries()
            total = sum(entry.size for _, entry in entries)
            for _, entry in entries:
                if total <= self.budget:
                    break
                doomed = self.root / f".evict-{uuid.uuid4().hex}"
                try:
                    os.rename(entry.dir, doomed)
                except OSError:
                    continue
                shutil.rmtree(doomed, ignore_errors=True)
                total -= entry.size
                dropped.append(entry.key)
        return dropped

    def sweep(self, older_than: float = 24 * 3600) -> None:
        """Remove scratch directories a crashed run left behind."""
        if not self.root.is_dir():
            return
        now = time.time()
        for child in self.root.iterdir():
            if child.name.startswith((".tmp-", ".evict-")):
                with contextlib.suppress(OSError):
                    if now - child.stat().st_mtime > older_than:
                        shutil.rmtree(child, ignore_errors=True)


def tree_size(root: Path) -> int:
    """Apparent size of every file under `root`, never following a symlink."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def restore_script(entry_paths: tuple[str, ...], wanted: tuple[str, ...]) -> str:
    """Shell run in the job's filesystem (entry data at MOUNT, read-only) to put the cached paths back."""
    lines = ["set -e"]
    for path in wanted:
        if path not in entry_paths:
            continue
        source = shlex.quote(f"{MOUNT}/{entry_paths.index(path)}")
        target = shlex.quote(container_path(path))
        parent = shlex.quote(os.path.dirname(container_path(path)) or "/")
        lines.append(
            f"if [ -d {source} ] && [ ! -L {source} ]; then mkdir -p {target} && cp -a {source}/. {target}/; "
            f"elif [ -e {source} ] || [ -L {source} ]; then mkdir -p {parent} && rm -rf {target} "
            f"&& cp -a {source} {target}; fi"
        )
    return "\n".join(lines)


def save_script(paths: tuple[str, ...]) -> str:
    """Shell run in the job's filesystem (scratch data at MOUNT, writable) to copy the paths out."""
    lines = ["set -e"]
    for index, path in enumerate(paths):
        source = shlex.quote(container_path(path))
        lines.append(f"if [ -e {source} ] || [ -L {source} ]; then cp -a {source} {MOUNT}/{index}; fi")
    return "\n".join(lines)


# A runner-internal script run in the job's filesystem with one extra mount: (result, last output line).
ScriptRunner = Callable[[str, Mount], tuple[Result | None, str]]


def restore(
    store: CacheStore, caches: tuple[CacheSpec, ...], run: ScriptRunner, log: Callable[[str], None]
) -> tuple[list[CacheSpec], list[str]]:
    """Put every cached key back into the job's filesystem; returns (the caches that missed, details)."""
    missed: list[CacheSpec] = []
    details: list[str] = []
    for cache in caches:
        entry = store.lookup(cache.key)
        if entry is None:
            missed.append(cache)
            details.append(f"cache miss {cache.key}")
            log(f"cache miss {cache.key}")
            continue
        details.append(f"cache hit {cache.key}")
        log(f"cache hit {cache.key}")
        result, last = run(restore_script(entry.paths, cache.paths), Mount(entry.data, MOUNT, readonly=True))
        if result is None or not result.ok:
            log(f"warning: cache {cache.key} could not be restored: {last or result}")
    return missed, details


def save(
    store: CacheStore, caches: list[CacheSpec], run: ScriptRunner, log: Callable[[str], None]
) -> list[str]:
    """Copy the paths of each cache out of the job's filesystem into the store; returns details."""
    details: list[str] = []
    store.sweep()  # scratch directories of runs that crashed mid-save
    for cache in caches:
        scratch = store.scratch()
        result, last = run(save_script(cache.paths), Mount(scratch / "data", MOUNT, readonly=False))
        if result is None or not result.ok:
            store.discard(scratch)
            log(f"warning: cache {cache.key} could not be saved: {last or result}")
            continue
        if not any((scratch / "data").iterdir()):
            store.discard(scratch)
            log(f"warning: cache {cache.key} not saved: none of its paths exist ({', '.join(cache.paths)})")
            continue
        entry = store.commit(cache.key, cache.paths, scratch)
        if entry is None:
            log(f"cache {cache.key} was saved meanwhile by another job; keeping that one")
        else:
            details.append(f"cache saved {cache.key}")
            log(f"cache saved {cache.key} ({entry.size} bytes)")
    return details
