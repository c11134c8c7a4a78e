"""The mount namespace of one container: root overlays, /proc with masks, a minimal /dev, /sys, pivot_root.

`plan_for` (in the caller, before fork) computes every path and option string; `perform` (in the
container's pid 1, after unshare) only issues syscalls, in an order that keeps each step safe:
propagation private first so nothing leaks back to the host, then the overlays, the workspace and
extra binds, /dev, /proc and its masks, /sys read-only, and last pivot_root with the old root detached.
"""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from runner.sandbox import syscalls as sc
from runner.sandbox import userns
from runner.sandbox.rootfs import Overlay, Rootfs
from runner.sandbox.types import ContainerSpec, IdMap

# /proc entries that leak host information or allow harm: hidden (files get /dev/null, dirs an empty tmpfs)
PROC_MASKED = ("kcore", "keys", "timer_list", "sched_debug", "latency_stats", "timer_stats", "acpi", "scsi")
PROC_READONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs")
SYS_MASKED = ("firmware",)
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
NOSUID_NODEV = sc.MS_NOSUID | sc.MS_NODEV
MAX_MOUNT_OPTIONS = 4000  # mount(2) copies at most one page of options


@dataclass
class MountPlan:
    root: str  # host path where the root overlay is mounted (inside the container's namespace)
    overlays: list[Overlay]
    binds: list[tuple[str, str, bool]] = field(default_factory=list)  # (source, target in root, readonly)
    hosts_file: str | None = None
    resolv_file: str | None = None
    disk: tuple[str, str] | None = None  # (device, mount point) of the upper dirs' own filesystem (disk.py)


def _write_if_changed(rootfs: Rootfs, path: Path, text: str) -> None:
    """Write a file of the rootfs unless it already says `text` (what it says is kept in memory:
    this runs for every container, and steps nearly always need the same hosts file)."""
    if rootfs.written.get(path) == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")  # concurrent steps
    tmp.write_text(text)
    os.rename(tmp, path)
    rootfs.written[path] = text


def plan_for(rootfs: Rootfs, spec: ContainerSpec, resolv_conf: str | None = None) -> MountPlan:
    root = str(rootfs.merged)
    plan = MountPlan(root=root, overlays=rootfs.overlays)
    if rootfs.disk is not None:
        plan.disk = (rootfs.disk.device, str(rootfs.upper_root))
    if spec.workspace is not None:
        plan.binds.append((str(spec.workspace), "workspace", False))
    for m in spec.mounts:
        plan.binds.append((str(m.source), m.target.lstrip("/"), m.readonly))
    hosts = f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{spec.hostname}\n"
    for name, address in sorted(spec.hosts.items()):
        hosts += f"{address}\t{name}\n"
    hosts_path = rootfs.dir / "hosts"
    _write_if_changed(rootfs, hosts_path, hosts)
    plan.hosts_file = str(hosts_path)
    if resolv_conf is not None:
        resolv_path = rootfs.dir / "resolv.conf"
        _write_if_changed(rootfs, resolv_path, resolv_conf)
        plan.resolv_file = str(resolv_path)
    return plan


def _ensure_dir(path: str) -> None:
    if not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)


def _ensure_file(path: str) -> None:
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a"):
            pass


def prepare_template(plan: MountPlan, idmap: IdMap | None = None, userns_fd: int | None = None) -> None:
    """In a fresh mount namespace: the parts every container over this rootfs shares (done once per job).

    With `idmap`, the overlays are mounted on idmapped layers and what is created here (mount points,
    device nodes) is owned by the container's root (see userns.py)."""
    root = plan.root
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    if plan.disk is not None:  # the job's size-limited filesystem, under its upper and work dirs
        from runner.sandbox.disk import MOUNT_OPTIONS

        device, mount_point = plan.disk
        sc.mount(device, mount_point, "ext4", NOSUID_NODEV, MOUNT_OPTIONS)
        for overlay in plan.overlays:
            _ensure_dir(overlay.upper)
            _ensure_dir(overlay.work)
    overlays = plan.overlays
    if idmap is not None and userns_fd is not None:
        overlays = userns.stage_overlays(overlays, os.path.join(os.path.dirname(root), "i"), userns_fd)
        userns.act_as_mapped_root(idmap)
    for overlay in overlays:
        target = os.path.join(root, overlay.target) if overlay.target else root
        options = overlay.options()
        if len(options) < MAX_MOUNT_OPTIONS:
            sc.mount("overlay", target, "overlay", sc.MS_NODEV, options)
        else:  # deep images: the option string would not fit in a page
            sc.mount_fs_with_options("overlay", target, overlay.option_list(), sc.MOUNT_ATTR_NODEV)
    _mount_dev(root, tty_gid=5 + (idmap.host_gid_start if idmap is not None else 0))
    _mount_sys(root)


def perform(plan: MountPlan, *, masked_proc: bool = True, userns_fd: int | None = None) -> None:
    """In the container's own copy of the template namespace: workspace, binds, /proc, then pivot_root.

    With `userns_fd`, binds are idmapped through that user namespace (files keep their owners)."""
    root = plan.root
    for source, target, readonly in plan.binds:
        dest = os.path.join(root, target)
        if os.path.isdir(source):
            _ensure_dir(dest)
        else:
            _ensure_file(dest)
        if userns_fd is not None:
            userns.bind(source, dest, userns_fd, readonly=readonly, recursive=True)
        else:
            sc.bind(source, dest, readonly=readonly, recursive=True, flags=sc.MS_NOSUID | sc.MS_NODEV)
    if masked_proc:
        mount_proc(root)
    else:
        sc.mount("proc", os.path.join(root, "proc"), "proc", NOSUID_NODEV | sc.MS_NOEXEC)
    etc_files: list[tuple[str | None, str]] = [(plan.hosts_file, "hosts"), (plan.resolv_file, "resolv.conf")]
    for etc_source, name in etc_files:
        if etc_source:
            target = os.path.join(root, "etc", name)
            if os.path.islink(target):  # e.g. resolv.conf -> /run/systemd/...: a link cannot be mounted on
                os.unlink(target)
            _ensure_file(target)
            if userns_fd is not None:
                userns.bind(etc_source, target, userns_fd, readonly=True)
            else:
                sc.bind(etc_source, target, readonly=True)
    os.chdir(root)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def _mount_dev(root: str, tty_gid: int = 5) -> None:
    dev = os.path.join(root, "dev")
    _ensure_dir(dev)
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        os.mknod(os.path.join(dev, name), stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.chmod(os.path.join(dev, name), 0o666)
    for name in ("pts", "shm", "mqueue"):
        os.mkdir(os.path.join(dev, name))
    sc.mount(
        "devpts",
        os.path.join(dev, "pts"),
        "devpts",
        sc.MS_NOSUID | sc.MS_NOEXEC,
        f"newinstance,ptmxmode=0666,mode=0620,gid={tty_gid}",  # the image's tty group (5), as host ids
    )
    os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    os.chmod(os.path.join(dev, "shm"), 0o1777)
    sc.mount("shm", os.path.join(dev, "shm"), "tmpfs", NOSUID_NODEV | sc.MS_NOEXEC, "mode=1777,size=65536k")
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
    ):
        os.symlink(target, os.path.join(dev, name))
    os.symlink("/proc/self/fd/2", os.path.join(dev, "stderr"))
    os.symlink("/proc/kcore", os.path.join(dev, "core"))


def mount_proc(root: str) -> None:
    proc = os.path.join(root, "proc")
    _ensure_dir(proc)
    sc.mount("proc", proc, "proc", NOSUID_NODEV | sc.MS_NOEXEC)
    null = os.path.join(root, "dev/null")
    for name in PROC_MASKED:
        path = os.path.join(proc, name)
        if os.path.isdir(path):
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY | NOSUID_NODEV | sc.MS_NOEXEC, "size=0")
        elif os.path.exists(path):
            sc.bind(null, path)
    for name in PROC_READONLY:
        path = os.path.join(proc, name)
        if os.path.exists(path):
            sc.bind(path, path, readonly=True, flags=NOSUID_NODEV | sc.MS_NOEXEC)


def _mount_sys(root: str) -> None:
    sys_dir = os.path.join(root, "sys")
    _ensure_dir(sys_dir)
    flags = sc.MS_RDONLY | NOSUID_NODEV | sc.MS_NOEXEC
    try:
        sc.mount("sysfs", sys_dir, "sysfs", flags)
    except OSError:  # sysfs of a network namespace we do not own: fall back to a read-only bind of the host's
        sc.bind("/sys", sys_dir, readonly=True, recursive=True, flags=NOSUID_NODEV | sc.MS_NOEXEC)
    for name in SYS_MASKED:
        path = os.path.join(sys_dir, name)
        if os.path.isdir(path):
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY | NOSUID_NODEV | sc.MS_NOEXEC, "size=0")
