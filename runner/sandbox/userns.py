"""User namespaces: container root is an unprivileged host uid, and the image's files keep their owners.

Container ids [0, 65536) map to a subordinate range of host ids: the `/etc/subuid` and `/etc/subgid`
entries of a user named `runner` if present, else of `root`, else DEFAULT_BASE (2^30, far above any
real user or the ranges `useradd` hands out, which start at 100000). `RUNNER_USERNS=off` turns it off.

Files stay as they are on disk: every layer, upper directory and bind source is seen through an
*idmapped mount* (`mount_setattr(MOUNT_ATTR_IDMAP)`) with the same mapping, so a file that is uid 0 on
disk is root inside, and a file container root creates is stored as uid 0 on disk, in an upper
directory (and so in an image layer made from it), the workspace and the cache store alike. The
overlays are mounted once per job on idmapped *layers* (overlayfs itself cannot be idmapped) in the
template mount namespace; the mounter's fsuid is the mapped root, so that what overlayfs creates
itself (copy-ups, whiteouts, its work directory) is stored as uid 0 too.

Every other namespace (mount, pid, network, uts, ipc, cgroup) is made by the host's root before the
container joins the user namespace as its last step, so the container's capabilities, the reduced
set of capabilities.py, apply only to files whose owners are mapped, and never to the host's kernel
objects: a network namespace, a mount, /proc/sys all belong to the initial user namespace.

Where the kernel refuses (user namespaces limited to 0, a filesystem without idmapped mounts), an
`auto` container runs without one, as the host's root with the same reduced capability set, and the
reason is kept on the Rootfs (`userns_note`) for the caller to log.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from runner.sandbox import syscalls
from runner.sandbox.nsholder import namespace_fd
from runner.sandbox.types import IdMap, SandboxError

if TYPE_CHECKING:
    from runner.sandbox.rootfs import Overlay, Rootfs

DEFAULT_BASE = 1 << 30
DEFAULT_COUNT = 65536
SUBORDINATE_OWNERS = ("runner", "root")  # whose /etc/subuid entry is used, first found wins
SETTING = "RUNNER_USERNS"
FALLBACK = "running as the host's root with a reduced capability set instead"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_SYS_open_tree = 428
_SYS_move_mount = 429
_SYS_mount_setattr = 442
_OPEN_TREE_CLONE = 1
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_AT_RECURSIVE = 0x8000
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_IDMAP = 0x00100000
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(result: int, what: str) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {errno.errorcode.get(err, err)} ({os.strerror(err)})")
    return result


# -- the range and the setting --------------------------------------------------------------------


def setting() -> bool:
    """RUNNER_USERNS: `auto` (default: on where the kernel allows) or `off`."""
    value = os.environ.get(SETTING, "auto").strip().lower() or "auto"
    if value not in ("auto", "off"):
        raise SandboxError(f"{SETTING}={value!r} is not valid: use auto or off")
    return value == "auto"


def _subordinate(path: str, owners: Iterable[str]) -> tuple[int, int] | None:
    """(start, count) of the first of `owners` (name or uid) in a subuid/subgid file, if any."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    entries: dict[str, tuple[int, int]] = {}
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) != 3 or line.startswith("#"):
            continue
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if count > 0 and start > 0:
            entries.setdefault(parts[0], (start, count))
    for owner in owners:
        for name in (owner, _uid_of(owner)):
            if name is not None and name in entries:
                return entries[name]
    return None


def _uid_of(name: str) -> str | None:
    try:
        import pwd

        return str(pwd.getpwnam(name).pw_uid)
    except (KeyError, ImportError):
        return None


def subordinate_range(subuid: str = "/etc/subuid", subgid: str = "/etc/subgid") -> IdMap:
    """The host ids container ids map to: the `runner` (else `root`) subordinate ranges, else the default.

    At most DEFAULT_COUNT ids are used; a shorter range maps fewer (ids beyond it show as nobody).
    """
    uids = _subordinate(subuid, SUBORDINATE_OWNERS)
    gids = _subordinate(subgid, SUBORDINATE_OWNERS)
    if uids is None:
        return IdMap(DEFAULT_BASE, DEFAULT_COUNT)
    count = min(uids[1], gids[1] if gids else uids[1], DEFAULT_COUNT)
    return IdMap(uids[0], count, gids[0] if gids else None)


_default: IdMap | None = None


def default_idmap() -> IdMap:
    global _default
    if _default is None:
        _default = subordinate_range()
    return _default


# -- the namespace itself -------------------------------------------------------------------------

_fds: dict[IdMap, int] = {}
_fds_lock = threading.Lock()


def userns_fd(idmap: IdMap) -> int:
    """An fd holding a user namespace with `idmap` (one per mapping and process: it owns nothing)."""
    fd = _fds.get(idmap)
    if fd is None:
        with _fds_lock:
            fd = _fds.get(idmap)
            if fd is None:
                fd = _fds[idmap] = _create(idmap)
    return fd


def _create(idmap: IdMap) -> int:
    def write_maps(pid: int) -> None:
        for name, start in (("uid_map", idmap.host_start), ("gid_map", idmap.host_gid_start)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(f"0 {start} {idmap.count}\n")

    def setup() -> None:
        syscalls.unshare(syscalls.CLONE_NEWUSER)

    try:
        return namespace_fd("user", setup, "create a user namespace", before_open=write_maps)
    except (SandboxError, OSError) as exc:
        detail = str(exc)
        limit = _max_user_namespaces()
        if limit == 0:
            detail += " (/proc/sys/user/max_user_namespaces is 0)"
        raise SandboxError(detail) from None


def _max_user_namespaces() -> int | None:
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


# -- idmapped mounts ------------------------------------------------------------------------------


def idmapped_tree(path: str, fd_userns: int, *, recursive: bool = False, attrs: int = 0) -> int:
    """A detached copy of the mount tree at `path`, idmapped through `fd_userns`; its fd."""
    rec = _AT_RECURSIVE if recursive else 0
    flags = _OPEN_TREE_CLONE | os.O_CLOEXEC | rec
    fd = _check(_libc.syscall(_SYS_open_tree, _AT_FDCWD, os.fsencode(path), flags), f"open_tree({path})")
    try:
        attr = _MountAttr(MOUNT_ATTR_IDMAP | attrs, 0, 0, fd_userns)
        result = _libc.syscall(
            _SYS_mount_setattr, fd, b"", _AT_EMPTY_PATH | rec, ctypes.byref(attr), ctypes.sizeof(attr)
        )
        _check(result, f"mount_setattr({path}, MOUNT_ATTR_IDMAP)")
    except BaseException:
        os.close(fd)
        raise
    return fd


def attach(tree_fd: int, target: str) -> None:
    result = _libc.syscall(
        _SYS_move_mount, tree_fd, b"", _AT_FDCWD, os.fsencode(target), _MOVE_MOUNT_F_EMPTY_PATH
    )
    _check(result, f"move_mount(-> {target})")


def bind(source: str, target: str, fd_userns: int, *, readonly: bool, recursive: bool = False) -> None:
    """An idmapped bind mount, nosuid and nodev (read-only if asked), in three syscalls."""
    attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (MOUNT_ATTR_RDONLY if readonly else 0)
    fd = idmapped_tree(source, fd_userns, recursive=recursive, attrs=attrs)
    try:
        attach(fd, target)
    finally:
        os.close(fd)


_probed: dict[int, str | None] = {}  # st_dev -> why it cannot be idmapped (None: it can)


def refusal(paths: Iterable[str], fd_userns: int) -> str | None:
    """Why one of `paths` cannot be seen through an idmapped mount, or None when all can.

    Idmapped mounts are a property of the filesystem type (ext4, xfs, btrfs, tmpfs have them;
    overlayfs, ramfs, NFS do not), so one probe per device answers for all its paths.
    """
    for path in paths:
        try:
            dev = os.stat(path).st_dev
        except OSError:
            continue  # made later (an upper directory): it is on the same filesystem as its parent
        if dev not in _probed:
            try:
                os.close(idmapped_tree(path, fd_userns))
                _probed[dev] = None
            except OSError as exc:
                why = exc.strerror or str(exc)
                _probed[dev] = f"{path} is on a filesystem that refuses idmapped mounts ({why})"
        if _probed[dev] is not None:
            return _probed[dev]
    return None


def stage_overlays(overlays: list[Overlay], stage: str, fd_userns: int) -> list[Overlay]:
    """In the template mount namespace: every layer, and every upper/work parent, idmapped under
    `stage/<n>`; the overlays rewritten to use them (short paths, so options fit one page longer)."""
    staged: dict[str, str] = {}

    def through(path: str) -> str:
        real = os.path.realpath(path)
        if real not in staged:
            target = os.path.join(stage, str(len(staged)))
            os.makedirs(target, exist_ok=True)
            fd = idmapped_tree(real, fd_userns)
            try:
                attach(fd, target)
            finally:
                os.close(fd)
            staged[real] = target
        return staged[real]

    result = []
    for overlay in overlays:
        parent = os.path.dirname(overlay.upper)
        if os.path.dirname(overlay.work) != parent:
            raise SandboxError(f"upper {overlay.upper} and work {overlay.work} must share a directory")
        base = through(parent)
        result.append(
            replace(
                overlay,
                lowers=tuple(through(lower) for lower in overlay.lowers),
                upper=os.path.join(base, os.path.basename(overlay.upper)),
                work=os.path.join(base, os.path.basename(overlay.work)),
            )
        )
    return result


# -- credentials ----------------------------------------------------------------------------------


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def act_as_mapped_root(idmap: IdMap) -> None:
    """fsuid/fsgid := the host ids of container root, keeping every capability the process had.

    What this process then creates through an idmapped mount is stored as uid 0 on disk (the host's
    own root is not mapped, so it could create nothing there). setfsuid drops the file capabilities
    from the effective set; they are raised again from the permitted set.
    """
    _libc.setfsgid(idmap.host_gid_start)
    _libc.setfsuid(idmap.host_start)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.syscall(125, ctypes.byref(header), ctypes.byref(data)), "capget")
    for word in data:
        word.effective = word.permitted
    _check(_libc.syscall(126, ctypes.byref(header), ctypes.byref(data)), "capset")


def enter(fd_userns: int) -> None:
    """Join the user namespace and become its root (the last namespace step of a container)."""
    syscalls.setns(fd_userns, syscalls.CLONE_NEWUSER)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    os.setgroups([])


def open_low_ports() -> None:
    """In the current (job's) network namespace, owned by the host's root: let the container's root
    bind ports below 1024 and ping, which its namespaced capabilities no longer allow there."""
    for name, value in (("ip_unprivileged_port_start", "0"), ("ping_group_range", "0 2147483647")):
        try:
            with open(f"/proc/sys/net/ipv4/{name}", "w") as f:
                f.write(value)
        except OSError:
            pass  # an older kernel without the knob: low ports stay root's, as without a namespace


# -- the decision for a container -----------------------------------------------------------------


def _overlay_paths(rootfs: Rootfs) -> list[str]:
    paths: list[str] = []
    for overlay in rootfs.overlays:
        paths.extend(overlay.lowers)
        paths.append(os.path.dirname(overlay.upper))
    return paths


def resolve(request: IdMap | str | None, rootfs: Rootfs, binds: list[str]) -> IdMap | None:
    """The mapping a container runs with: an explicit IdMap (errors are errors), None (off), or for
    "auto" the setting and what the kernel allows for this rootfs and these bind sources; a refusal
    is noted on the rootfs (`userns_note`) and the container runs without a user namespace."""
    if request is None:
        return None
    if isinstance(request, IdMap):
        why = refusal(binds, userns_fd(request))
        if why is not None:
            raise SandboxError(f"user namespace: {why}")
        return request
    if not rootfs.userns_decided:
        decide(rootfs, [])
    if rootfs.userns is None:
        return None
    why = refusal(binds, userns_fd(rootfs.userns))
    if why is not None:
        _note(rootfs, f"user namespace unavailable: {why}; {FALLBACK}")
        return None
    return rootfs.userns


def decide(rootfs: Rootfs, binds: list[str]) -> IdMap | None:
    """Decide once per rootfs (a job's) whether its "auto" containers get a user namespace: the
    mapping is kept as `rootfs.userns`, and the reason for going without as `rootfs.userns_note`."""
    if rootfs.userns_decided:
        return rootfs.userns
    rootfs.userns_decided = True
    if not setting():
        _note(rootfs, f"user namespace off ({SETTING}=off): {FALLBACK}")
        return None
    idmap = default_idmap()
    try:
        why = refusal([*_overlay_paths(rootfs), *binds], userns_fd(idmap))
    except SandboxError as exc:
        why = f"the kernel refused to create one: {exc}"
    if why is not None:
        _note(rootfs, f"user namespace unavailable: {why}; {FALLBACK}")
        return None
    rootfs.userns = idmap
    return idmap


def _note(rootfs: Rootfs, text: str) -> None:
    if not rootfs.userns_note:
        rootfs.userns_note = text
