"""The sandbox's public value types: what a caller asks for and what it gets back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Reason = Literal["exited", "timeout", "oom", "killed"]
Stream = Literal["stdout", "stderr"]
OutputCallback = Callable[[Stream, bytes], None]


class SandboxError(Exception):
    """The runner's own fault or a bad request (bad limit, missing workspace...): never the command's.

    The message is one line meant for the user: it names the path or the syscall and errno.
    """


@dataclass(frozen=True)
class Limits:
    memory: int | None = None  # bytes; swap is not allowed beyond it
    cpus: float | None = None  # CPU quota in CPUs, e.g. 1.5
    pids: int | None = None  # tasks in the container, threads included
    # I/O throttles on the block devices under the container's writable layer and workspace (see limits.py)
    io_read_bps: int | None = None  # bytes per second
    io_write_bps: int | None = None
    io_read_iops: int | None = None  # operations per second
    io_write_iops: int | None = None

    @property
    def io(self) -> bool:
        return any(
            v is not None
            for v in (self.io_read_bps, self.io_write_bps, self.io_read_iops, self.io_write_iops)
        )


@dataclass(frozen=True)
class Mount:
    """An extra bind mount from the host into the container."""

    source: Path
    target: str  # absolute path inside the container
    readonly: bool = True


@dataclass(frozen=True)
class IdMap:
    """A user-namespace mapping: container ids [0, count) -> host ids [host_start, host_start+count)
    (groups from `gid_start` when the subordinate gid range differs from the uid range)."""

    host_start: int
    count: int = 65536
    gid_start: int | None = None

    @property
    def host_gid_start(self) -> int:
        return self.host_start if self.gid_start is None else self.gid_start


@dataclass
class Result:
    exit_code: int  # the command's code, or 128+signal; 124 for a timeout
    reason: Reason
    signal: int | None = None  # the signal that ended the command, if any
    wall_time: float = 0.0  # seconds, from fork to the last process gone
    cpu_time: float = 0.0  # seconds, user+system of the whole cgroup
    peak_memory: int = 0  # bytes, the cgroup's high-water mark (0 where the kernel does not say)
    pids_limited: bool = False  # a fork or clone failed because the cgroup's pids limit was reached

    @property
    def ok(self) -> bool:
        return self.reason == "exited" and self.exit_code == 0


@dataclass
class ContainerSpec:
    """One process tree to run in fresh pid/mount/ipc/uts/cgroup namespaces."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/workspace"
    hostname: str = "runner"
    uid: int = 0
    gid: int = 0
    workspace: Path | None = None  # bind-mounted read-write at /workspace
    mounts: list[Mount] = field(default_factory=list)
    hosts: dict[str, str] = field(default_factory=dict)  # extra /etc/hosts entries: name -> address
    limits: Limits = field(default_factory=Limits)
    timeout: float | None = None  # seconds
    pty: bool = False  # one pseudo-terminal for stdout and stderr (colour), reported as "stdout"
    # "auto": in a user namespace where RUNNER_USERNS and the kernel allow (see userns.py), else
    # without one; an IdMap: in one with exactly that mapping (an error if impossible); None: never
    userns: IdMap | Literal["auto"] | None = "auto"
    seccomp: Literal["default", "unconfined"] = "default"  # the syscall filter of seccomp.py, or none
