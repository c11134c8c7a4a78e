"""Turning an applied layer directory back into a layer tar (`.wh.` whiteouts), for export and push.

The reverse of `tarlayer`: a character device 0/0 becomes an empty `.wh.NAME` file and a directory with
`trusted.overlay.opaque=y` gets a `.wh..wh..opq` entry. Entries are sorted and owner names left empty so
the same directory always gives the same bytes; `mtime` pins every timestamp when reproducibility
across machines matters more than the files' own times.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from runner.images.compression import Compression, compressor
from runner.images.digest import HashingWriter
from runner.images.tarlayer import _XATTR_ALLOWED, _XATTR_PAX, OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX

MEDIA_TYPES: dict[Compression, str] = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}


@dataclass(frozen=True)
class PackedLayer:
    """A layer blob written to disk: the diff_id of its tar, the digest and size of the blob itself."""

    diff_id: str
    digest: str
    size: int
    media_type: str


def _walk(root: Path, rel: str = "") -> Iterator[tuple[str, os.stat_result, Path]]:
    """Every entry under `root` as (tar name, lstat, path), parents before children, names sorted."""
    here = root / rel if rel else root
    for name in sorted(os.listdir(here)):
        path = here / name
        st = os.lstat(path)
        tar_name = f"{rel}/{name}" if rel else name
        yield tar_name, st, path
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, tar_name)


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


def _xattrs(path: Path) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    found: dict[str, str] = {}
    for attr in sorted(names):
        if attr.startswith(_XATTR_ALLOWED):
            value = os.getxattr(path, attr, follow_symlinks=False)
            found[_XATTR_PAX + attr] = value.decode("utf-8", "surrogateescape")
    return found


def _info(name: str, st: os.stat_result, mtime: int | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime) if mtime is None else mtime
    return info


def write_layer_tar(layer: Path, out: BinaryIO, *, mtime: int | None = None) -> str:
    """Write the layer directory as an uncompressed layer tar to `out`; returns its diff_id."""
    hashed = HashingWriter(out)
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=hashed, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for name, st, path in _walk(layer):
            if _is_whiteout(st):
                parent, _, base = name.rpartition("/")
                wh = f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base
                info = tarfile.TarInfo(wh)
                info.mtime = int(st.st_mtime) if mtime is None else mtime
                tar.addfile(info)
                continue
            info = _info(name, st, mtime)
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                info.pax_headers = _xattrs(path)
                tar.addfile(info)
                if _opaque(path):
                    marker = tarfile.TarInfo(f"{name}/{OPAQUE_MARKER}")
                    marker.mtime = info.mtime
                    tar.addfile(marker)
            elif stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    info.type = tarfile.LNKTYPE
                    info.linkname = seen[key]
                    tar.addfile(info)
                    continue
                seen[key] = name
                info.size = st.st_size
                info.pax_headers = _xattrs(path)
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            elif stat.S_ISFIFO(st.st_mode):
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
            # sockets and real device nodes are not layer content: left out
    return hashed.digest


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def pack_layer(
    layer: Path, dest: Path, *, compression: Compression = "gzip", mtime: int | None = None
) -> PackedLayer:
    """Write the layer as a compressed blob at `dest` and return its diff_id, digest, size and media type."""
    with open(dest, "wb") as f:
        blob = HashingWriter(f)
        packer = compressor(compression, blob)  # type: ignore[arg-type]
        diff_id = write_layer_tar(layer, packer, mtime=mtime)
        if packer is not blob:
            packer.close()
    return PackedLayer(diff_id, blob.digest, blob.size, MEDIA_TYPES[compression])


def layer_to_tar(layer: Path, *, mtime: int | None = None) -> bytes:
    """The uncompressed layer tar in memory: for small layers and tests; prefer `write_layer_tar`."""
    buffer = io.BytesIO()
    write_layer_tar(layer, buffer, mtime=mtime)
    return buffer.getvalue()
