"""Durable job logs and artifacts behind a small `Storage` interface; `DirectoryStorage` is a directory.

Layout of `DirectoryStorage(root)` (default `RUNNER_HOME/storage`):

    <root>/<build id>/<encoded job>/log.txt          the whole log, one line per recorded line
    <root>/<build id>/<encoded job>/log.complete     present once the job's log has ended
    <root>/<build id>/<encoded job>/artifacts/<relpath>

Job names such as `test (py: 3.12)` are percent-encoded (`encode_name`), so every name maps to one
safe directory and back. A shared mount works as a root for several machines; an object store can
implement the same protocol.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import quote

from runner.settings import Paths

_SAFE = "-_.+=@,()"
_MAX_NAME = 180
_CHUNK = 1 << 20


class StorageError(ValueError):
    """A refused storage request; the message names the path and why."""


class UnsafePath(StorageError):
    """An artifact path that is absolute, climbs with `..`, or is otherwise not a plain relative path."""


class ArtifactNotFound(StorageError):
    """No such artifact for this build and job."""


def encode_name(job: str) -> str:
    """A job name as one filesystem-safe path component: percent-encoding, no leading dot, bounded length."""
    if not job:
        raise StorageError("a job name cannot be empty")
    encoded = quote(job, safe=_SAFE).replace("~", "%7E")  # `~` marks a shortened name below
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    if len(encoded) > _MAX_NAME:
        digest = hashlib.sha256(job.encode()).hexdigest()[:16]
        encoded = f"{encoded[:120].rstrip('%')}~{digest}"
    return encoded


def clean_relpath(relpath: str) -> PurePosixPath:
    """`relpath` as a normalised relative path, or UnsafePath."""
    if not relpath or "\0" in relpath or "\\" in relpath:
        raise UnsafePath(f"artifact path {relpath!r} is empty or has a NUL or backslash")
    path = PurePosixPath(relpath)
    if path.is_absolute():
        raise UnsafePath(f"artifact path {relpath!r} is absolute: give it relative to the job")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts or ".." in parts:
        raise UnsafePath(f"artifact path {relpath!r} leaves the job's artifacts (`..`)")
    return PurePosixPath(*parts)


class Storage(Protocol):
    """Where logs and artifacts live after (and while) a job runs."""

    def append_log(self, build_id: int, job: str, text: str) -> None: ...

    def read_log(self, build_id: int, job: str, offset: int = 0, limit: int | None = None) -> bytes: ...

    def mark_log_complete(self, build_id: int, job: str) -> None: ...

    def log_complete(self, build_id: int, job: str) -> bool: ...

    def put_artifact(self, build_id: int, job: str, relpath: str, src: Path) -> None: ...

    def open_artifact(self, build_id: int, job: str, relpath: str) -> Path: ...

    def list_artifacts(self, build_id: int, job: str) -> list[tuple[str, int]]: ...


class DirectoryStorage:
    """Storage in a local (or shared) directory. Thread- and process-safe for appends and artifact puts."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else Paths.default().storage

    def job_dir(self, build_id: int, job: str) -> Path:
        if isinstance(build_id, bool) or int(build_id) < 0:
            raise StorageError(f"build id {build_id!r} is not a non-negative integer")
        return self.root / str(int(build_id)) / encode_name(job)

    # logs

    def log_path(self, build_id: int, job: str) -> Path:
        return self.job_dir(build_id, job) / "log.txt"

    def append_log(self, build_id: int, job: str, text: str) -> None:
        """Append `text` as is (callers end lines with `\\n`); one write, so concurrent appends never mix."""
        path = self.log_path(build_id, job)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8", "replace")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)

    def read_log(self, build_id: int, job: str, offset: int = 0, limit: int | None = None) -> bytes:
        """Bytes of the log from `offset` (at most `limit`); empty when there is no log (yet)."""
        if offset < 0 or (limit is not None and limit < 0):
            raise StorageError("log offset and limit cannot be negative")
        try:
            with open(self.log_path(build_id, job), "rb") as handle:
                handle.seek(offset)
                return handle.read() if limit is None else handle.read(limit)
        except FileNotFoundError:
            return b""

    def mark_log_complete(self, build_id: int, job: str) -> None:
        marker = self.job_dir(build_id, job) / "log.complete"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    def log_complete(self, build_id: int, job: str) -> bool:
        return (self.job_dir(build_id, job) / "log.complete").exists()

    # artifacts

    def _artifact_root(self, build_id: int, job: str) -> Path:
        return self.job_dir(build_id, job) / "artifacts"

    def put_artifact(self, build_id: int, job: str, relpath: str, src: Path) -> None:
        """Store the file `src` (or each file under the directory `src`) as `relpath`, atomically per file."""
        target = self._artifact_root(build_id, job) / clean_relpath(relpath)
        src = Path(src)
        if src.is_dir():
            for path in sorted(src.rglob("*")):
                if path.is_file():
                    self._put_file(path, target / path.relative_to(src))
        elif src.is_file():
            self._put_file(src, target)
        else:
            raise StorageError(f"artifact source {src} is not a file or directory")

    def _put_file(self, src: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(prefix=".put-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as data:
                shutil.copyfileobj(data, out, _CHUNK)
            os.chmod(scratch, 0o644)
            os.replace(scratch, target)
        except BaseException:
            Path(scratch).unlink(missing_ok=True)
            raise

    def open_artifact(self, build_id: int, job: str, relpath: str) -> Path:
        """The stored file for `relpath`; UnsafePath for escapes, ArtifactNotFound when absent."""
        root = self._artifact_root(build_id, job)
        path = root / clean_relpath(relpath)
        try:
            resolved = path.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            raise ArtifactNotFound(f"no artifact {relpath!r} in build {build_id} job {job!r}") from None
        if not resolved.is_relative_to(root.resolve()) or not resolved.is_file():
            raise ArtifactNotFound(f"no artifact {relpath!r} in build {build_id} job {job!r}")
        return resolved

    def list_artifacts(self, build_id: int, job: str) -> list[tuple[str, int]]:
        """`(relpath, size)` of every artifact of a job, sorted by path."""
        root = self._artifact_root(build_id, job)
        if not root.is_dir():
            return []
        found = []
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and not path.name.startswith(".put-"):
                found.append((path.relative_to(root).as_posix(), path.stat().st_size))
        return sorted(found)

    def delete_build(self, build_id: int) -> None:
        """Remove everything stored for a build (retention)."""
        shutil.rmtree(self.root / str(int(build_id)), ignore_errors=True)
