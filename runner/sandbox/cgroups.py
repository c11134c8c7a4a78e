"""cgroup v1 and v2 drivers: create a container's cgroup, set limits, kill it, account it, remove it.

The driver is chosen by what the host mounts: a pure cgroup2 `/sys/fs/cgroup` gets the v2 driver,
a host with v1 controllers mounted (hybrid included) gets the v1 driver. `RUNNER_CGROUP=v1|v2`
forces one. Containers' cgroups live under the caller's own cgroup in a `runner` directory, so a
runner started inside another container or a systemd slice stays inside its own subtree.

Disk I/O limits go to v1's blkio controller (its directory made only for containers that have
them) or v2's `io.max`, for the block devices the caller names (see limits.py for which, and for
what v1 cannot throttle).

The child joins its cgroup itself (it writes 0 to the `cgroup.procs` files the parent opened for it)
before it runs any user code, so nothing the user runs is ever outside the limits.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from runner.sandbox import limits as io_limits
from runner.sandbox.types import Limits, SandboxError

CPU_PERIOD_US = 100_000
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer")
V2_CONTROLLERS = ("memory", "cpu", "pids", "io")


@dataclass
class Stats:
    cpu_time: float = 0.0  # seconds
    peak_memory: int = 0  # bytes
    oom_kills: int = 0
    pids_limited: int = 0  # forks refused because pids.max was reached (pids.events "max")


def _read(path: Path | str) -> str:
    """A cgroup file's content ('' if absent), with plain os calls: this runs several times per container."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        return os.read(fd, 65536).decode()
    except OSError:
        return ""
    finally:
        os.close(fd)


def _write(path: Path | str, value: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise SandboxError(f"cannot write {value.strip()!r} to {path}: {exc.strerror}") from None


def _keyed(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _rmdir_retry(path: Path, timeout: float = 5.0) -> None:
    """rmdir a cgroup, retrying while the kernel still counts exiting tasks in it (EBUSY)."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise SandboxError(f"cannot remove cgroup {path}: {exc.strerror}") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _mountinfo() -> list[tuple[str, str, str]]:
    """(mount point, fstype, super options) of every mount of this process."""
    out = []
    for line in _read(Path("/proc/self/mountinfo")).splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        rfields = right.split()
        if len(fields) >= 5 and len(rfields) >= 3:
            out.append((fields[4].replace("\\040", " "), rfields[0], rfields[2]))
    return out


def _own_cgroups() -> dict[str, str]:
    """controller (or '' for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    out: dict[str, str] = {}
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            out[name.removeprefix("name=")] = path
    return out


@dataclass
class Cgroup:
    """One container's cgroup: a directory per v1 controller, or one v2 directory."""

    name: str
    dirs: list[Path]
    version: int
    main: Path  # where procs are listed (freezer for v1, the dir for v2)
    memory: Path | None = None
    cpuacct: Path | None = None
    pids_dir: Path | None = None  # where pids.events is (v1's pids directory; v2's only directory)

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> list[int]:
        return [int(p) for p in _read(self.main / "cgroup.procs").split()]

    def populated(self) -> bool:
        if self.version == 2:
            return _keyed(_read(self.main / "cgroup.events")).get("populated", 0) == 1
        return bool(_read(self.main / "cgroup.procs").strip())

    def kill(self) -> None:
        """SIGKILL every process in the cgroup, even one forking as fast as it can."""
        if not self.main.exists():
            return
        if self.version == 2 and (self.main / "cgroup.kill").exists():
            try:
                _write(self.main / "cgroup.kill", "1")
                return
            except SandboxError:
                pass
        freezer = self.main / ("cgroup.freeze" if self.version == 2 else "freezer.state")
        frozen, thawed = ("1", "0") if self.version == 2 else ("FROZEN", "THAWED")
        can_freeze = freezer.exists()
        if can_freeze:
            try:
                _write(freezer, frozen)
            except SandboxError:
                can_freeze = False
        for _ in range(100):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if can_freeze:
                break
            time.sleep(0.001)
        if can_freeze:
            _write(freezer, thawed)

    def wait_empty(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        delay = 0.0002
        while self.populated():
            if time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        return True

    def stats(self) -> Stats:
        stats = Stats()
        if self.version == 2:
            usage_usec = _keyed(_read(self.main / "cpu.stat")).get("usage_usec", 0)
            stats.cpu_time = usage_usec / 1e6
            peak = _read(self.main / "memory.peak").strip()
            stats.peak_memory = int(peak) if peak.isdigit() else 0
            stats.oom_kills = _keyed(_read(self.main / "memory.events")).get("oom_kill", 0)
        else:
            if self.cpuacct is not None:
                usage = _read(self.cpuacct / "cpuacct.usage").strip()
                stats.cpu_time = int(usage) / 1e9 if usage.isdigit() else 0.0
            if self.memory is not None:
                peak = _read(self.memory / "memory.max_usage_in_bytes").strip()
                stats.peak_memory = int(peak) if peak.isdigit() else 0
                stats.oom_kills = _keyed(_read(self.memory / "memory.oom_control")).get("oom_kill", 0)
        if self.pids_dir is not None:
            stats.pids_limited = _keyed(_read(self.pids_dir / "pids.events")).get("max", 0)
        return stats

    def remove(self) -> None:
        """Kill what is left, wait until the cgroup is empty, and remove its directories."""
        if self.populated():
            self.kill()
            self.wait_empty()
        for d in self.dirs:
            _rmdir_retry(d)


class Driver:
    """Creates cgroups of one hierarchy version under the caller's own cgroup."""

    version: int

    def create(self, name: str, limits: Limits, io_devices: list[tuple[int, int]] | None = None) -> Cgroup:
        """A new cgroup with `limits`; the io limits apply to `io_devices` (whole disks, see limits.py)."""
        raise NotImplementedError

    def existing(self, name: str) -> Cgroup:
        """The cgroup of that name as the sweep finds it (directories may be missing)."""
        raise NotImplementedError

    def list_names(self) -> list[str]:
        raise NotImplementedError

    def can_limit(self, controller: str) -> bool:
        """Whether a limit of `controller` ("pids", "io"...) can be applied here, for defaults that
        should apply where they can (a limit the user asked for fails with a message instead)."""
        raise NotImplementedError


class V1Driver(Driver):
    version = 1

    def __init__(self) -> None:
        own = _own_cgroups()
        self.bases: dict[str, Path] = {}
        self.blkio: Path | None = None  # only containers with io limits get a blkio cgroup
        for mount_point, fstype, options in _mountinfo():
            if fstype != "cgroup":
                continue
            for controller in options.split(","):
                if controller in V1_CONTROLLERS and controller not in self.bases:
                    rel = own.get(controller, "/").lstrip("/")
                    self.bases[controller] = Path(mount_point) / rel / "runner"
                if controller == "blkio" and self.blkio is None:
                    self.blkio = Path(mount_point) / own.get("blkio", "/").lstrip("/") / "runner"
        missing = [c for c in ("memory", "pids", "freezer") if c not in self.bases]
        if missing:
            raise SandboxError(
                f"cgroup v1: controllers {', '.join(missing)} are not mounted under /sys/fs/cgroup"
            )

    def _dirs(self, name: str) -> dict[str, Path]:
        dirs: dict[str, Path] = {}
        for controller, base in self.bases.items():
            dirs[controller] = base / name
        return dirs

    def _unique(self, dirs: dict[str, Path]) -> list[Path]:
        seen: list[Path] = []
        for d in dirs.values():
            if d not in seen:
                seen.append(d)
        return seen

    def create(self, name: str, limits: Limits, io_devices: list[tuple[int, int]] | None = None) -> Cgroup:
        dirs = self._dirs(name)
        if limits.io:
            if self.blkio is None:
                raise SandboxError(
                    "io limits need the blkio cgroup controller, which is not mounted under /sys/fs/cgroup"
                )
            if not io_devices:
                raise SandboxError("io limits: no block device to throttle was found")
            dirs["blkio"] = self.blkio / name
        unique = self._unique(dirs)
        for d in unique:
            try:
                d.mkdir(parents=True)
            except FileExistsError:
                pass
            except OSError as exc:
                raise SandboxError(f"cannot create cgroup {d}: {exc.strerror}") from None
        cg = Cgroup(name, unique, 1, dirs["freezer"], dirs["memory"], dirs.get("cpuacct"), dirs["pids"])
        try:
            if limits.memory is not None:
                _write(dirs["memory"] / "memory.limit_in_bytes", str(limits.memory))
                memsw = dirs["memory"] / "memory.memsw.limit_in_bytes"
                if memsw.exists():
                    _write(memsw, str(limits.memory))
                _write(dirs["memory"] / "memory.swappiness", "0")
            if limits.cpus is not None:
                if "cpu" not in dirs:
                    raise SandboxError("a CPU limit needs the cpu cgroup controller, which is not mounted")
                _write(dirs["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(dirs["cpu"] / "cpu.cfs_quota_us", str(max(1000, int(limits.cpus * CPU_PERIOD_US))))
            if limits.pids is not None:
                _write(dirs["pids"] / "pids.max", str(limits.pids))
            for filename, line in io_limits.v1_lines(limits, io_devices or []):
                _write(dirs["blkio"] / filename, line)
        except SandboxError:
            cg.remove()
            raise
        return cg

    def existing(self, name: str) -> Cgroup:
        dirs = self._dirs(name)
        if self.blkio is not None and (self.blkio / name).is_dir():
            dirs["blkio"] = self.blkio / name
        return Cgroup(name, self._unique(dirs), 1, dirs["freezer"], dirs["memory"], dirs.get("cpuacct"))

    def list_names(self) -> list[str]:
        names: set[str] = set()
        for base in (*self.bases.values(), *([self.blkio] if self.blkio is not None else [])):
            if base.is_dir():
                names.update(p.name for p in base.iterdir() if p.is_dir())
        return sorted(names)

    def can_limit(self, controller: str) -> bool:
        return (self.blkio is not None) if controller == "io" else controller in self.bases


class V2Driver(Driver):
    version = 2

    def __init__(self, mount_point: Path | None = None) -> None:
        if mount_point is None:
            for point, fstype, _ in _mountinfo():
                if fstype == "cgroup2":
                    mount_point = Path(point)
                    break
        if mount_point is None:
            raise SandboxError("cgroup v2: no cgroup2 filesystem is mounted")
        own = _own_cgroups().get("", "/").lstrip("/")
        self.base = mount_point / own / "runner"
        self.available: set[str] = set()
        self._prepared = False

    def _prepare(self) -> None:
        """Create the runner's parent cgroup and delegate the controllers it needs to its children."""
        if self._prepared:
            return
        self.base.mkdir(parents=True, exist_ok=True)
        available = set(_read(self.base / "cgroup.controllers").split())
        wanted = [c for c in V2_CONTROLLERS if c in available]
        if wanted:
            try:
                _write(self.base / "cgroup.subtree_control", " ".join("+" + c for c in wanted))
            except SandboxError:
                wanted = []
        self.available = set(wanted)
        self._prepared = True

    def create(self, name: str, limits: Limits, io_devices: list[tuple[int, int]] | None = None) -> Cgroup:
        self._prepare()
        needed = {
            "memory": limits.memory is not None,
            "cpu": limits.cpus is not None,
            "pids": limits.pids is not None,
            "io": limits.io,
        }
        for controller, wanted in needed.items():
            if wanted and controller not in self.available:
                article = "an" if controller[0] in "aeio" else "a"
                raise SandboxError(
                    f"{article} {controller} limit needs the {controller} controller, which cgroup v2 at "
                    f"{self.base.parent} does not delegate (enable it in the parent's cgroup.subtree_control)"
                )
        d = self.base / name
        try:
            d.mkdir()
        except FileExistsError:
            pass
        except OSError as exc:
            raise SandboxError(f"cannot create cgroup {d}: {exc.strerror}") from None
        if limits.io and not io_devices:
            raise SandboxError("io limits: no block device to throttle was found")
        cg = Cgroup(name, [d], 2, d, pids_dir=d)
        try:
            if limits.memory is not None:
                _write(d / "memory.max", str(limits.memory))
                if (d / "memory.swap.max").exists():
                    _write(d / "memory.swap.max", "0")
            if limits.cpus is not None:
                _write(d / "cpu.max", f"{max(1000, int(limits.cpus * CPU_PERIOD_US))} {CPU_PERIOD_US}")
            if limits.pids is not None:
                _write(d / "pids.max", str(limits.pids))
            for line in io_limits.io_max_lines(limits, io_devices or []):
                _write(d / "io.max", line)
        except SandboxError:
            cg.remove()
            raise
        return cg

    def existing(self, name: str) -> Cgroup:
        return Cgroup(name, [self.base / name], 2, self.base / name)

    def list_names(self) -> list[str]:
        if not self.base.is_dir():
            return []
        return sorted(p.name for p in self.base.iterdir() if p.is_dir())

    def can_limit(self, controller: str) -> bool:
        try:
            self._prepare()
        except OSError:
            return False
        return controller in self.available


_driver: Driver | None = None


def can_limit(controller: str) -> bool:
    """`Driver.can_limit` of this host's driver; False where no cgroup hierarchy can be used at all."""
    try:
        return driver().can_limit(controller)
    except SandboxError:
        return False


def driver() -> Driver:
    """The host's driver, made once per process."""
    global _driver
    if _driver is None:
        forced = os.environ.get("RUNNER_CGROUP", "")
        if forced == "v2":
            _driver = V2Driver()
        elif forced == "v1":
            _driver = V1Driver()
        else:
            mounts = _mountinfo()
            pure_v2 = any(p == "/sys/fs/cgroup" and t == "cgroup2" for p, t, _ in mounts)
            _driver = V2Driver() if pure_v2 else V1Driver()
    return _driver
