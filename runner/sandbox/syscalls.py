"""Thin ctypes wrappers over the syscalls the sandbox needs, each failing with the syscall and errno named.

Only what Python 3.11's `os` lacks lives here: unshare, setns, mount, umount2, pivot_root, sethostname,
capset, prctl, close_range. Every wrapper raises `OSError` whose message names the call and its
arguments, so a failing container says exactly what the kernel refused.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24

MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

CLOSE_RANGE_CLOEXEC = 1 << 2

_SYS_pivot_root = 155  # x86_64
_SYS_move_mount = 429
_SYS_fsopen = 430
_SYS_fsconfig = 431
_SYS_fsmount = 432
_FSCONFIG_SET_STRING = 1
_FSCONFIG_CMD_CREATE = 6
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_AT_FDCWD = -100
MOUNT_ATTR_NODEV = 0x4
_SYS_close_range = 436
_SYS_capset = 126
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _check(result: int, what: str) -> None:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {errno.errorcode.get(err, err)} ({os.strerror(err)})")


def _b(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return os.fsencode(value)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    result = _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    if result == -1:
        kind = fstype or ("bind" if flags & MS_BIND else "remount" if flags & MS_REMOUNT else "propagation")
        _check(result, f"mount({kind} {source or ''} -> {target})")


def bind(
    source: str, target: str, *, readonly: bool = False, recursive: bool = False, flags: int = 0
) -> None:
    """A bind mount; read-only binds need a remount, as the kernel ignores MS_RDONLY on the first call."""
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if readonly or flags:
        mount(None, target, None, MS_BIND | MS_REMOUNT | flags | (MS_RDONLY if readonly else 0))


def mount_fs_with_options(
    fstype: str, target: str, options: list[tuple[str, str]], attr_flags: int = 0
) -> None:
    """Mount with the new mount API (Linux 5.2+; `lowerdir+` needs 6.8): each option set on its own,
    so no page-sized limit applies to the option string (overlays of hundreds of layers)."""
    fd = _libc.syscall(_SYS_fsopen, _b(fstype), 1)  # FSOPEN_CLOEXEC
    _check(fd, f"fsopen({fstype})")
    try:
        for key, value in options:
            result = _libc.syscall(_SYS_fsconfig, fd, _FSCONFIG_SET_STRING, _b(key), _b(value), 0)
            _check(result, f"fsconfig({fstype} {key}={value})")
        _check(
            _libc.syscall(_SYS_fsconfig, fd, _FSCONFIG_CMD_CREATE, None, None, 0),
            f"fsconfig({fstype} create)",
        )
        mfd = _libc.syscall(_SYS_fsmount, fd, 1, attr_flags)  # FSMOUNT_CLOEXEC
        _check(mfd, f"fsmount({fstype})")
        try:
            result = _libc.syscall(_SYS_move_mount, mfd, b"", _AT_FDCWD, _b(target), _MOVE_MOUNT_F_EMPTY_PATH)
            _check(result, f"move_mount({fstype} -> {target})")
        finally:
            os.close(mfd)
    finally:
        os.close(fd)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount2({target})")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), f"setns(fd {fd}, {nstype:#x})")


def pivot_root(new_root: str, put_old: str) -> None:
    result = _libc.syscall(_SYS_pivot_root, _b(new_root), _b(put_old))
    _check(result, f"pivot_root({new_root}, {put_old})")


def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, len(data)), f"sethostname({name})")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> None:
    _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


def close_range_cloexec(first: int) -> None:
    """Mark every fd >= first close-on-exec (Linux 5.11); falls back to closing them."""
    result = _libc.syscall(
        _SYS_close_range, ctypes.c_uint(first), ctypes.c_uint(0xFFFFFFFF), CLOSE_RANGE_CLOEXEC
    )
    if result == -1:
        os.closerange(first, os.sysconf("SC_OPEN_MAX"))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def capset(mask: int) -> None:
    """Set effective, permitted and inheritable capabilities of this thread to `mask`."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        word = (mask >> (32 * i)) & 0xFFFFFFFF
        data[i].effective = data[i].permitted = data[i].inheritable = word
    _check(_libc.syscall(_SYS_capset, ctypes.byref(header), ctypes.byref(data)), "capset")


def cap_last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


def drop_bounding_set(keep: int, last: int) -> None:
    for cap in range(last + 1):
        if not keep & (1 << cap):
            try:
                prctl(PR_CAPBSET_DROP, cap)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # a capability this kernel does not know
                    raise


_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def loopback_up() -> None:
    """Bring `lo` up in the current network namespace (what `ip link set lo up` does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        ifreq = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, _SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | _IFF_UP, b""))
