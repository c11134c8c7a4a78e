"""Layer blob compression: gzip, zstd or none, told apart by magic bytes rather than by media type."""

from __future__ import annotations

import gzip
from typing import BinaryIO, Literal, cast

import zstandard

from runner.images.errors import ImageError

Compression = Literal["gzip", "zstd", "none"]

_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"
_XZ = b"\xfd7zXZ\x00"
_BZIP2 = b"BZh"


class _Prefixed:
    """A reader that gives back bytes already read from `raw` (to sniff them) before the rest of `raw`."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + self._raw.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._raw.read(n)

    def readable(self) -> bool:
        return True


def sniff(head: bytes) -> Compression:
    """The compression of a blob from its first bytes; xz and bzip2 are refused (the OCI spec has neither)."""
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_ZSTD):
        return "zstd"
    if head.startswith(_XZ) or head.startswith(_BZIP2):
        raise ImageError("layer is xz or bzip2 compressed: only gzip, zstd and plain tar layers work")
    return "none"


def decompressed(raw: BinaryIO) -> tuple[BinaryIO, Compression]:
    """A reader of the uncompressed layer tar from `raw`, whatever its compression, and which one it was."""
    head = b""
    while len(head) < 6:
        more = raw.read(6 - len(head))
        if not more:
            break
        head += more
    kind = sniff(head)
    prefixed = cast(BinaryIO, _Prefixed(head, raw))
    if kind == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=prefixed, mode="rb")), kind
    if kind == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(prefixed, read_across_frames=True)
        return cast(BinaryIO, reader), kind
    return prefixed, kind


def compressor(kind: Compression, out: BinaryIO) -> BinaryIO:
    """A writer compressing into `out` deterministically (no names or timestamps in the gzip header)."""
    if kind == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="", compresslevel=6))
    if kind == "zstd":
        return cast(BinaryIO, zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False))
    return out
