"""Content digests: hashing streams as they pass, checking size then digest, and chain ids of layer stacks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from runner.images.errors import ImageError

CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> tuple[str, int]:
    """The digest and size of a file on disk."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def short(digest: str, length: int = 12) -> str:
    """The hex part of a digest cut to `length`, for names and for people."""
    return digest.partition(":")[2][:length]


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """OCI ChainIDs: the first is the first diff_id, then sha256(parent_chain + " " + diff_id)."""
    result: list[str] = []
    for diff_id in diff_ids:
        if not result:
            result.append(diff_id)
        else:
            result.append(sha256_bytes(f"{result[-1]} {diff_id}".encode()))
    return result


class HashingReader:
    """Wraps a readable stream, hashing and counting every byte read through it.

    With `limit`, reading stops with an error as soon as more than `limit` bytes arrive, so a hostile
    or wrong blob cannot fill the disk before its size is checked.
    """

    def __init__(self, raw: BinaryIO, *, limit: int | None = None, what: str = "blob") -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0
        self._limit = limit
        self._what = what

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self._hash.update(data)
            self.size += len(data)
            if self._limit is not None and self.size > self._limit:
                raise ImageError(f"{self._what}: larger than the {self._limit} bytes its descriptor declares")
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        """Read to the end, so the digest covers the whole stream."""
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class HashingWriter:
    """Wraps a writable stream, hashing and counting every byte written through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._raw.write(data)
        return len(data)

    def flush(self) -> None:
        self._raw.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def check(
    what: str, *, want_digest: str | None, want_size: int | None, got_digest: str, got_size: int
) -> None:
    """Size first (a truncated download says so plainly), then digest."""
    if want_size is not None and got_size != want_size:
        kind = "truncated" if got_size < want_size else "too long"
        raise ImageError(f"{what}: {kind}: {got_size} bytes, its descriptor says {want_size}")
    if want_digest is not None and got_digest != want_digest:
        raise ImageError(f"{what}: digest mismatch: content is {got_digest}, expected {want_digest}")
