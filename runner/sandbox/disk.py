"""A job's disk limit: its upper directories on a size-limited ext4 in a sparse file, on a loop device.

Writing past the size gives the job ENOSPC, and the host's filesystem loses at most that much.
The image is sparse (only what the job writes takes space) and mounted with `discard`, so what the
job deletes is given back. mkfs writes no journal (the filesystem is thrown away with the job) and
no inode tables (they read as zeros in a sparse file), and runs once per size: a job's image is a
sparse copy of that pristine one (only its few data extents are copied), so making one costs about a
millisecond.

Nothing here can leak past the runner: the loop device is attached with LO_FLAGS_AUTOCLEAR and held
by a descriptor of ours; the filesystem is mounted only inside the rootfs's template mount namespaces
(see mounts.prepare_template), which are themselves held by descriptors. When the last of those
closes, even by SIGKILL, the kernel unmounts it and the loop device detaches itself; the image file
lies in the rootfs's directory, which the sweep removes. `sweep_loops` is the belt to those braces.

tmpfs with `size=` would be simpler, but its pages are memory charged to whichever cgroup touches them
first: a job's files would count against its memory limit (or a service's) and against the host's RAM.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path

from runner.sandbox.types import SandboxError

MIN_DISK = 8 * 1024 * 1024  # ext4 needs some room for its own metadata
LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A
LOOP_CLR_FD = 0x4C01
LO_FLAGS_AUTOCLEAR = 4
LO_FLAGS_DIRECT_IO = 16
LOOP_MAJOR = 7
MOUNT_OPTIONS = "noinit_itable,discard"
# struct loop_config { u32 fd; u32 block_size; struct loop_info64 info; u64 reserved[8]; } (linux/loop.h)
_LOOP_INFO64 = "QQQQQIIII64s64s32s2Q"
_LOOP_CONFIG = "=II" + _LOOP_INFO64 + "8Q"


def loop_config(fd: int, flags: int) -> bytes:
    """The LOOP_CONFIGURE argument: the backing file's fd and flags, everything else zero."""
    info = (0, 0, 0, 0, 0, 0, 0, 0, flags, b"", b"", b"", 0, 0)
    return struct.pack(_LOOP_CONFIG, fd, 0, *info, *([0] * 8))


def _mkfs(image: Path) -> None:
    mkfs = shutil.which("mkfs.ext4") or shutil.which("mkfs.ext4", path="/usr/sbin:/sbin")
    if mkfs is None:
        raise SandboxError("a disk limit needs mkfs.ext4: apt-get install e2fsprogs")
    done = subprocess.run(
        [
            mkfs,
            "-q",
            "-F",
            "-O",
            "^has_journal,^resize_inode",
            "-E",
            "nodiscard,lazy_itable_init=1,root_owner=0:0",
            "-m",
            "0",
            "-L",
            "runner-disk",
            str(image),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise SandboxError(f"mkfs.ext4 {image}: {message}")


def _sparse_copy(source: Path, dest_fd: int) -> None:
    """Copy `source` into `dest_fd` (already truncated to its size) extent by extent, keeping the holes."""
    fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size, offset = os.fstat(fd).st_size, 0
        while offset < size:
            try:
                offset = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # nothing but a hole to the end
                    return
                raise
            end = os.lseek(fd, offset, os.SEEK_HOLE)
            while offset < end:
                offset += os.copy_file_range(fd, dest_fd, end - offset, offset, offset)
    finally:
        os.close(fd)


def _pristine(size: int, directory: Path) -> Path:
    """A freshly made ext4 image of `size` in `directory`, made once (renamed into place when complete)."""
    path = directory / f"ext4-{size}.img"
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".ext4-{size}.{uuid.uuid4().hex[:8]}"
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.ftruncate(fd, size)
        os.close(fd)
        _mkfs(tmp)
        os.rename(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SandboxError(f"cannot make a disk image in {directory}: {exc.strerror}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _open_loop(number: int, spare_dir: Path) -> int:
    """Open /dev/loopN, or a node of our own for it where /dev has none (a static /dev)."""
    path = f"/dev/loop{number}"
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        node = spare_dir / f"loop{number}"
        if not node.exists():
            os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(LOOP_MAJOR, number))
        return os.open(node, os.O_RDWR | os.O_CLOEXEC)


def _attach(image_fd: int, spare_dir: Path) -> tuple[int, int]:
    """A free loop device configured on `image_fd` with autoclear: (its number, an fd holding it)."""
    try:
        control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise SandboxError(
            f"a disk limit needs loop devices: cannot open /dev/loop-control: {exc.strerror} "
            "(load the loop module, and give the runner access to /dev/loop*)"
        ) from None
    try:
        for _ in range(20):  # another process may take the free device between our two calls
            try:
                number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
            except OSError as exc:
                raise SandboxError(
                    f"a disk limit needs a free loop device: LOOP_CTL_GET_FREE: {exc.strerror}"
                ) from None
            try:
                fd = _open_loop(number, spare_dir)
            except OSError as exc:
                raise SandboxError(f"cannot open loop device {number}: {exc.strerror}") from None
            for flags in (LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO, LO_FLAGS_AUTOCLEAR):
                try:
                    fcntl.ioctl(fd, LOOP_CONFIGURE, loop_config(image_fd, flags))
                    return number, fd
                except OSError as exc:
                    if exc.errno == errno.EBUSY:
                        break
                    if exc.errno != errno.EINVAL or not flags & LO_FLAGS_DIRECT_IO:
                        os.close(fd)
                        raise SandboxError(f"LOOP_CONFIGURE /dev/loop{number}: {exc.strerror}") from None
            os.close(fd)
            time.sleep(0.001)
        raise SandboxError("no free loop device: every one was taken while we tried (LOOP_CONFIGURE: EBUSY)")
    finally:
        os.close(control)


class Disk:
    """An ext4 of `size` bytes in `image`, attached to loop device `number` for as long as `fd` is open."""

    def __init__(self, image: Path, size: int, number: int, fd: int) -> None:
        self.image = image
        self.size = size
        self.number = number
        self.fd: int | None = fd
        self.device = f"/proc/self/fd/{fd}"  # what mount(2) is given: no /dev path needed

    @property
    def dev(self) -> tuple[int, int]:
        """(major, minor) of the loop device, for io limits."""
        return LOOP_MAJOR, self.number

    @classmethod
    def create(cls, image: Path, size: int, pristine_dir: Path | None = None) -> Disk:
        """An ext4 of `size` in `image`, copied from a pristine one kept in `pristine_dir` (made
        there once per size), or formatted in place without one."""
        if size < MIN_DISK:
            raise SandboxError(f"a disk limit must be at least {MIN_DISK // 1024 // 1024}M, not {size} bytes")
        try:
            image_fd = os.open(image, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise SandboxError(f"cannot create the disk image {image}: {exc.strerror}") from None
        try:
            os.ftruncate(image_fd, size)  # sparse: takes no space until written
            if pristine_dir is not None:
                _sparse_copy(_pristine(size, pristine_dir), image_fd)
            else:
                _mkfs(image)
            number, fd = _attach(image_fd, image.parent)
        except BaseException:
            os.close(image_fd)
            image.unlink(missing_ok=True)
            raise
        os.close(image_fd)  # the loop device holds the file now
        return cls(image, size, number, fd)

    def close(self) -> None:
        """Let the loop device go: it detaches itself once no mount uses it any more (autoclear).

        The last close of a loop device waits for the kernel to tear it down (tens of milliseconds),
        so it happens on a thread of its own: the job's end does not wait for it."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            threading.Thread(
                target=os.close, args=(fd,), name=f"loop{self.number}-release", daemon=True
            ).start()
        self.image.unlink(missing_ok=True)


def sweep_loops(under: Path) -> list[str]:
    """Detach loop devices whose backing file lay under `under` and is gone (its runner was killed)."""
    swept: list[str] = []
    prefix = str(under).rstrip("/") + "/"
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            name = backing.read_text().strip()
        except OSError:
            continue
        path = name.removesuffix(" (deleted)")
        if not path.startswith(prefix) or (not name.endswith(" (deleted)") and os.path.exists(path)):
            continue
        number = int(backing.parent.parent.name.removeprefix("loop"))
        try:
            fd = _open_loop(number, under)
        except OSError:
            continue
        try:
            fcntl.ioctl(fd, LOOP_CLR_FD)  # on a device still mounted somewhere: detaches at the last umount
            swept.append(f"loop{number}")
        except OSError:
            pass
        finally:
            os.close(fd)
    return swept
