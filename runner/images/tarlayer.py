"""Applying a layer tar to a fresh directory by the OCI layer rules, with path-safe extraction of our own.

The result is the "applied" form the engine mounts as an overlay lower directory: a `.wh.NAME` entry
becomes a character device 0/0 named NAME, and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its
directory. Every path is opened component by component from the layer root with O_NOFOLLOW, so no
entry can be written through a symlink, and `..` or absolute names refuse the whole layer.
Block and character devices in a layer are skipped with a warning (the container gets its own /dev).
"""

from __future__ import annotations

import errno
import gzip
import logging
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from runner.images.compression import Compression, decompressed
from runner.images.digest import CHUNK, HashingReader, check
from runner.images.errors import ImageError

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_XATTR_PAX = "SCHILY.xattr."
_XATTR_ALLOWED = ("user.", "security.")  # never trusted.overlay.*: a layer must not forge overlay metadata
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class AppliedLayer:
    """What extraction learned: the diff_id of the tar and the digest and size of the blob as read."""

    diff_id: str
    digest: str
    size: int
    compression: Compression


def clean_path(name: str, what: str) -> list[str]:
    """The components of a tar member name relative to the layer root; `..` and absolute names are refused."""
    if name.startswith("/"):
        raise ImageError(f"{what}: refusing absolute path {name!r} in the layer")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ImageError(f"{what}: refusing path {name!r} that climbs out with '..'")
    if any("\0" in part for part in parts):
        raise ImageError(f"{what}: refusing path {name!r} with a NUL byte")
    return parts


def apply_layer(
    blob: BinaryIO,
    dest: Path,
    tmp_root: Path,
    *,
    digest: str | None = None,
    size: int | None = None,
    diff_id: str | None = None,
    what: str = "layer",
) -> AppliedLayer:
    """Extract the layer blob into `dest` (which must not exist), checking what the descriptor promises.

    The tar is applied to a fresh directory under `tmp_root` (same filesystem as `dest`) and renamed into
    place only once the size, digest and diff_id all match; on any failure it is removed.
    """
    tmp_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="x-", dir=tmp_root))
    try:
        outer = HashingReader(blob, limit=size, what=what)
        try:
            stream, kind = decompressed(outer)  # type: ignore[arg-type]
            inner = HashingReader(stream, what=what)
            with tarfile.open(fileobj=inner, mode="r|") as tar:  # type: ignore[call-overload]
                _Extractor(work, what).run(tar)
            inner.drain()
            outer.drain()
        except (EOFError, tarfile.TarError, zlib.error, zstandard.ZstdError, gzip.BadGzipFile) as exc:
            outer.drain()
            check(what, want_digest=digest, want_size=size, got_digest=outer.digest, got_size=outer.size)
            raise ImageError(f"{what}: not a valid layer tar ({exc})") from None
        check(what, want_digest=digest, want_size=size, got_digest=outer.digest, got_size=outer.size)
        if diff_id is not None and inner.digest != diff_id:
            raise ImageError(f"{what}: uncompressed content is {inner.digest}, image config says {diff_id}")
        os.rename(work, dest)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        where = f" {exc.filename}:" if isinstance(exc.filename, str) else ""
        raise ImageError(f"{what}: cannot extract:{where} {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return AppliedLayer(inner.digest, outer.digest, outer.size, kind)


class _Extractor:
    """Writes tar members under one root directory, never following a symlink on the way."""

    def __init__(self, root: Path, what: str) -> None:
        self.root = root
        self.what = what
        self.kinds: dict[str, str] = {}  # "a/b" -> file | dir | symlink | fifo | whiteout, made by this layer
        self.dir_times: dict[str, int] = {}

    def run(self, tar: tarfile.TarFile) -> None:
        root_fd = os.open(self.root, _DIR_FLAGS)
        try:
            self.root_fd = root_fd
            os.fchmod(root_fd, 0o755)  # unless the tar has an entry for the root itself
            for member in tar:
                self._member(tar, member)
            self._set_dir_times()
        finally:
            os.close(root_fd)

    def _fail(self, name: str, why: str) -> ImageError:
        return ImageError(f"{self.what}: refusing {name!r}: {why}")

    def _open_dir(self, parts: list[str], name: str, *, create: bool) -> int:
        """An fd of the directory `parts` under the root, each component a real directory, never a symlink."""
        fd = os.dup(self.root_fd)
        try:
            for i, part in enumerate(parts):
                key = "/".join(parts[: i + 1])
                try:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise self._fail(name, f"{key} does not exist in this layer") from None
                    os.mkdir(part, 0o755, dir_fd=fd)
                    self.kinds[key] = "dir"
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    if create and self.kinds.get(key) == "whiteout":
                        os.unlink(part, dir_fd=fd)  # an entry of this layer wins over its own whiteout
                        os.mkdir(part, 0o755, dir_fd=fd)
                        self.kinds[key] = "dir"
                        nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                    else:
                        why = "symlink" if exc.errno == errno.ELOOP else "non-directory"
                        raise self._fail(name, f"its parent {key} is a {why}") from None
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _clear(self, parent_fd: int, base: str, *, keep_dir: bool) -> bool:
        """Remove whatever is at `base`, but keep a directory if `keep_dir`. Returns whether one was kept."""
        try:
            st = os.lstat(base, dir_fd=parent_fd)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(base, dir_fd=parent_fd)
        else:
            os.unlink(base, dir_fd=parent_fd)
        return False

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = member.name
        parts = clean_path(name, self.what)
        if member.islnk():
            clean_path(member.linkname, self.what)
        if not parts:  # the layer root itself ("./")
            if member.isdir():
                self._set_meta(self.root_fd, member)
                self.dir_times[""] = _ns(member.mtime)
            return
        base = parts[-1]
        key = "/".join(parts)
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts, name)
            return
        if member.ischr() or member.isblk():
            log.warning("%s: skipping device node %s (containers get their own /dev)", self.what, name)
            return
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk() or member.isfifo()):
            log.warning("%s: skipping %s of unsupported tar type %r", self.what, name, member.type)
            return
        parent_fd = self._open_dir(parts[:-1], name, create=True)
        try:
            if member.isdir():
                if not self._clear(parent_fd, base, keep_dir=True):
                    os.mkdir(base, 0o700, dir_fd=parent_fd)
                fd = os.open(base, _DIR_FLAGS, dir_fd=parent_fd)
                try:
                    self._set_meta(fd, member)
                finally:
                    os.close(fd)
                self.kinds[key] = "dir"
                self.dir_times[key] = _ns(member.mtime)
            elif member.isreg():
                self._clear(parent_fd, base, keep_dir=False)
                self._write_file(tar, member, parent_fd, base)
                self.kinds[key] = "file"
            elif member.issym():
                self._clear(parent_fd, base, keep_dir=False)
                os.symlink(member.linkname, base, dir_fd=parent_fd)
                os.chown(base, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
                mtime = _ns(member.mtime)
                os.utime(base, ns=(mtime, mtime), dir_fd=parent_fd, follow_symlinks=False)
                self.kinds[key] = "symlink"
            elif member.islnk():
                self._hardlink(member, parent_fd, base, key)
            else:
                self._clear(parent_fd, base, keep_dir=False)
                os.mkfifo(base, 0o600, dir_fd=parent_fd)
                flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(base, flags, dir_fd=parent_fd)
                try:
                    self._set_meta(fd, member)
                    mtime = _ns(member.mtime)
                    os.utime(fd, ns=(mtime, mtime))
                finally:
                    os.close(fd)
                self.kinds[key] = "fifo"
        finally:
            os.close(parent_fd)

    def _write_file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parent_fd: int, base: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, 0o600, dir_fd=parent_fd)
        try:
            source = tar.extractfile(member)
            if source is not None:
                remaining = member.size
                while remaining > 0:
                    chunk = source.read(min(CHUNK, remaining))
                    if not chunk:
                        raise ImageError(f"{self.what}: truncated in the middle of {member.name!r}")
                    os.write(fd, chunk)
                    remaining -= len(chunk)
            self._set_meta(fd, member)
            mtime = _ns(member.mtime)
            os.utime(fd, ns=(mtime, mtime))
        finally:
            os.close(fd)

    def _hardlink(self, member: tarfile.TarInfo, parent_fd: int, base: str, key: str) -> None:
        target = clean_path(member.linkname, self.what)
        target_key = "/".join(target)
        if self.kinds.get(target_key) not in ("file", "symlink", "fifo"):
            why = f"hard link to {member.linkname!r}, which is not a file of this layer"
            raise self._fail(member.name, why)
        if target_key == key:
            return
        target_fd = self._open_dir(target[:-1], member.name, create=False)
        try:
            self._clear(parent_fd, base, keep_dir=False)
            os.link(target[-1], base, src_dir_fd=target_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
        finally:
            os.close(target_fd)
        self.kinds[key] = self.kinds[target_key]

    def _whiteout(self, parts: list[str], name: str) -> None:
        base = parts[-1]
        parent_fd = self._open_dir(parts[:-1], name, create=True)
        try:
            if base == OPAQUE_MARKER:
                os.setxattr(parent_fd, OPAQUE_XATTR, b"y")
                return
            if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                log.debug("%s: ignoring whiteout metadata %s", self.what, name)
                return
            hidden = base[len(WHITEOUT_PREFIX) :]
            if hidden in ("", ".", ".."):
                raise self._fail(name, "whiteout of an invalid name")
            key = "/".join([*parts[:-1], hidden])
            if key in self.kinds:
                return  # whiteouts hide only lower layers: an entry of this same layer stays
            self._clear(parent_fd, hidden, keep_dir=False)
            os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent_fd)
            self.kinds[key] = "whiteout"
        finally:
            os.close(parent_fd)

    def _set_meta(self, fd: int, member: tarfile.TarInfo) -> None:
        """Owner, then mode (chown clears set-id bits), then the allowed extended attributes."""
        os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)
        for key, value in member.pax_headers.items():
            if not key.startswith(_XATTR_PAX):
                continue
            attr = key[len(_XATTR_PAX) :]
            if not attr.startswith(_XATTR_ALLOWED):
                log.warning("%s: skipping xattr %s on %s", self.what, attr, member.name)
                continue
            try:
                os.setxattr(fd, attr, value.encode("utf-8", "surrogateescape"))
            except OSError as exc:  # a value the kernel rejects, or a filesystem without xattrs
                log.warning("%s: skipping xattr %s on %s: %s", self.what, attr, member.name, exc.strerror)

    def _set_dir_times(self) -> None:
        """Directory mtimes last, deepest first, since writing their children changed them."""
        for key in sorted(self.dir_times, key=lambda k: k.count("/") + (1 if k else 0), reverse=True):
            parts = key.split("/") if key else []
            try:
                fd = self._open_dir(parts, key, create=False)
            except ImageError:
                continue  # replaced by a later entry of the tar
            try:
                os.utime(fd, ns=(self.dir_times[key], self.dir_times[key]))
            finally:
                os.close(fd)


def _ns(mtime: float) -> int:
    return int(mtime * 1_000_000_000)
