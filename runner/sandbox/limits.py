"""Disk I/O throttles: which block devices a path lives on, and the cgroup lines that throttle them.

The kernel throttles I/O per block device, so a container's `io` limits are written for each device
under its writable layer (the rootfs's upper directories, or the job's loop device when it has a
`disk:` size) and its workspace. A partition is throttled through its whole disk, as the kernel
accounts bios there (`/sys/dev/block/MAJ:MIN/partition` says a device is one).

cgroup v1's blkio controller sees only I/O its tasks submit themselves: direct I/O and reads, but
not buffered writes, which the kernel's flusher threads write back later outside any cgroup. So under
v1 `write_bps` throttles `O_DIRECT` and synchronous writes (and the page cache keeps absorbing the
rest); cgroup v2's `io.max` attributes writeback to the cgroup that dirtied the pages, and throttles both.
"""

from __future__ import annotations

import os
from pathlib import Path

from runner.sandbox.types import Limits, SandboxError

SYS_DEV_BLOCK = Path("/sys/dev/block")


def whole_disk(major: int, minor: int, sys_dev_block: Path = SYS_DEV_BLOCK) -> tuple[int, int]:
    """The disk a block device belongs to: itself, or the parent of a partition."""
    entry = sys_dev_block / f"{major}:{minor}"
    if not (entry / "partition").exists():
        return major, minor
    try:
        parent = (entry.resolve().parent / "dev").read_text().strip()
        pmajor, _, pminor = parent.partition(":")
        return int(pmajor), int(pminor)
    except (OSError, ValueError):
        return major, minor


def device_of(path: Path | str, sys_dev_block: Path = SYS_DEV_BLOCK) -> tuple[int, int]:
    """The whole-disk (major, minor) holding `path`; SandboxError where no block device does (tmpfs...)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise SandboxError(f"io limits: cannot stat {path}: {exc.strerror}") from None
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    if not (sys_dev_block / f"{major}:{minor}").exists():
        raise SandboxError(
            f"io limits need a block device under {path}, but it is on an anonymous device "
            f"{major}:{minor} (tmpfs, overlayfs...): keep the workspace and RUNNER_HOME on a disk, "
            "or give the job a `disk:` size"
        )
    return whole_disk(major, minor, sys_dev_block)


def devices_for(paths: list[Path | str]) -> list[tuple[int, int]]:
    """The distinct whole disks under `paths`, in order."""
    out: list[tuple[int, int]] = []
    for path in paths:
        dev = device_of(path)
        if dev not in out:
            out.append(dev)
    return out


def v1_lines(limits: Limits, devices: list[tuple[int, int]]) -> list[tuple[str, str]]:
    """(blkio file, line) pairs for cgroup v1: one line per device and limit, written one by one."""
    files = (
        ("blkio.throttle.read_bps_device", limits.io_read_bps),
        ("blkio.throttle.write_bps_device", limits.io_write_bps),
        ("blkio.throttle.read_iops_device", limits.io_read_iops),
        ("blkio.throttle.write_iops_device", limits.io_write_iops),
    )
    return [(name, f"{major}:{minor} {value}") for name, value in files if value for major, minor in devices]


def io_max_lines(limits: Limits, devices: list[tuple[int, int]]) -> list[str]:
    """Lines for cgroup v2's `io.max` (`MAJ:MIN rbps=N wbps=N riops=N wiops=N`; unset keys stay `max`)."""
    keys = (
        ("rbps", limits.io_read_bps),
        ("wbps", limits.io_write_bps),
        ("riops", limits.io_read_iops),
        ("wiops", limits.io_write_iops),
    )
    settings = " ".join(f"{key}={value}" for key, value in keys if value)
    return [f"{major}:{minor} {settings}" for major, minor in devices] if settings else []
