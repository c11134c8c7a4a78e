"""Building small layer tars in memory for the tests, entry by entry, with the stdlib's tarfile."""

from __future__ import annotations

import gzip
import io
import tarfile

import zstandard


class TarBuilder:
    """Collects entries and returns the tar's bytes; every entry is explicit, nothing is implied."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buffer, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def _add(self, info: tarfile.TarInfo, data: bytes | None = None) -> TarBuilder:
        info.mtime = info.mtime or 1_600_000_000
        if data is not None:
            info.size = len(data)
            self._tar.addfile(info, io.BytesIO(data))
        else:
            self._tar.addfile(info)
        return self

    def dir(self, name: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> TarBuilder:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, gid
        return self._add(info)

    def file(
        self,
        name: str,
        data: bytes = b"",
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime: int = 0,
        xattrs: dict[str, bytes] | None = None,
    ) -> TarBuilder:
        info = tarfile.TarInfo(name)
        info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, mtime
        if xattrs:
            info.pax_headers = {
                f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()
            }
        return self._add(info, data)

    def symlink(self, name: str, target: str) -> TarBuilder:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        return self._add(info)

    def hardlink(self, name: str, target: str) -> TarBuilder:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.LNKTYPE, target
        return self._add(info)

    def device(self, name: str, kind: bytes = tarfile.CHRTYPE, major: int = 1, minor: int = 3) -> TarBuilder:
        info = tarfile.TarInfo(name)
        info.type, info.devmajor, info.devminor, info.mode = kind, major, minor, 0o666
        return self._add(info)

    def fifo(self, name: str) -> TarBuilder:
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.FIFOTYPE, 0o600
        return self._add(info)

    def bytes(self) -> bytes:
        self._tar.close()
        return self._buffer.getvalue()

    def gzip(self) -> bytes:
        return gzip.compress(self.bytes(), mtime=0)

    def zstd(self) -> bytes:
        return zstandard.ZstdCompressor().compress(self.bytes())
