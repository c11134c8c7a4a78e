"""Records of throwaway directories under RUNNER_HOME/run, and the sweep that uses them and cgroup names.

Every throwaway directory (a rootfs's upper dirs, a job's workspace copy) is first recorded with its
owner's pid and start time; a container's cgroup needs no record, as its name carries the same. Mounts
need none either: they exist only inside containers' mount namespaces and vanish with them. When a
runner process is SIGKILLed, its containers die with it (parent-death signals), but cgroup directories
and temp dirs stay; the next runner process to start a container sweeps those whose owner is gone.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from runner.settings import Paths


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


_OWNER = (os.getpid(), _start_time(os.getpid()))


def _owner() -> tuple[int, str]:
    global _OWNER
    if _OWNER[0] != os.getpid():  # a forked process owns its own records
        _OWNER = (os.getpid(), _start_time(os.getpid()))
    return _OWNER


def write(paths: Paths, name: str, *, tmp_dirs: list[str]) -> None:
    """Record temp dirs owned by this process; `remove` the record once they are gone."""
    pid, start = _owner()
    data = {"pid": pid, "start": start, "tmp_dirs": tmp_dirs}
    try:
        fd = os.open(paths.run / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        paths.run.mkdir(parents=True, exist_ok=True)
        fd = os.open(paths.run / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data))


def remove(paths: Paths, name: str) -> None:
    try:
        os.unlink(paths.run / name)
    except FileNotFoundError:
        pass


def _alive(pid: int, start: str) -> bool:
    return _start_time(pid) == start and start != ""


def sweep(paths: Paths) -> list[str]:
    """Remove what dead runner processes left: their recorded temp dirs, and their cgroups (found by
    name, see `cgroup_name`), killing any process still in them."""
    from runner.sandbox.cgroups import driver
    from runner.sandbox.types import SandboxError

    try:
        drv = driver()
    except SandboxError:  # no cgroup hierarchy here (inside a container): sweep the rest
        drv = None
    swept: list[str] = []
    for record in sorted(paths.run.iterdir()) if paths.run.is_dir() else []:
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(data.get("pid", 0)), str(data.get("start", ""))):
            continue
        for tmp in data.get("tmp_dirs", []):
            shutil.rmtree(tmp, ignore_errors=True)
        record.unlink(missing_ok=True)
        swept.append(record.name)
    # A job's disk (disk.py) detaches itself when its runner dies; a loop device still bound to a
    # swept image (a mount some other namespace kept) is told to let go at its last unmount.
    if paths.tmp.is_dir():
        from runner.sandbox.disk import sweep_loops

        swept.extend(sweep_loops(paths.tmp))
    # Containers' cgroups carry no record: their name says whose they are (see `cgroup_name`).
    if drv is None:
        return swept
    for name in drv.list_names():
        owner_pid, _, rest = name[1:].partition(".")
        owner_start = rest.partition("-")[0]
        if not owner_pid.isdigit() or _alive(int(owner_pid), owner_start):
            continue
        try:
            drv.existing(name).remove()
            swept.append(name)
        except Exception:
            pass
    return swept


def cgroup_name(suffix: str) -> str:
    """A container's cgroup name: `c<owner pid>.<owner start time>-<suffix>`, so a sweep knows whose it is."""
    pid, start = _owner()
    return f"c{pid}.{start}-{suffix}"


_swept: set[Path] = set()


def sweep_once(paths: Paths) -> None:
    if paths.home not in _swept:
        _swept.add(paths.home)
        sweep(paths)
