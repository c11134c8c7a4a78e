#!/usr/bin/env python3
"""Soak: many containers through the real sandbox, then count what leaked (issue 7, item 7).

The mix, in rounds of ten containers sharing one rootfs and one network namespace (as a job's steps do):
  normal    `echo`, must exit 0
  timeout   `sleep 30` under a 0.3 s timeout, must end `timeout` (124)
  oom       a Python loop allocating past a 48 MiB memory limit, must end `oom` (137)
  killed    a caller process (a child of this script, like a worker) starts a container running
            `sleep 300` and is SIGKILLed while it runs; then `records.sweep` runs as the next
            worker to start would, and must remove what the dead caller left
A quarter of the rounds use a `bridge` network (slirp4netns), the rest `none`.

Then the leaks, against a snapshot taken before the first container. The machine is shared, so only
what can be attributed to this run counts as a leak (other processes' figures are printed as context):
  mounts        host mount table entries under this run's RUNNER_HOME, and new nsfs mounts
  cgroups       directories named for this script or one of its callers (`c<pid>.<start>-...`, see
                runner.sandbox.records) under every v1 controller and the v2 hierarchy
  processes     any process whose environment carries this run's marker (every container process
                does), and slirp4netns processes holding a namespace of this script or its callers
  netns         network namespaces held open by this script's descriptors, nsfs mounts
  temp dirs     entries of RUNNER_HOME/tmp and records of RUNNER_HOME/run
Exit 0 when nothing leaked and every container ended as its kind must; 1 otherwise.

Usage: python3 benchmarks/soak_containers.py [-n 1000] [--threads 3] [--quick]   (as root)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.sandbox import ContainerSpec, Limits, NetworkNamespace, Rootfs, records, run, spawn
from runner.settings import Paths

KINDS = ("normal", "normal", "normal", "normal", "normal", "normal", "timeout", "oom", "timeout", "killed")
OOM = "x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n"
MEMORY_LIMIT = 48 * 1024 * 1024


# --- what this run owns -------------------------------------------------------------------------


def start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


class Owners:
    """Pids (with start times) of this script and of the callers it started: the cgroups' owners."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pids: set[tuple[int, str]] = {(os.getpid(), start_time(os.getpid()))}

    def add(self, pid: int) -> None:
        with self.lock:
            self.pids.add((pid, start_time(pid)))

    def owns_cgroup(self, name: str) -> bool:
        pid, _, rest = name[1:].partition(".")
        return name.startswith("c") and pid.isdigit() and (int(pid), rest.partition("-")[0]) in self.pids


def cgroup_mounts() -> list[Path]:
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                found.append(Path(fields[4]))
    return found


def cgroup_dirs() -> set[str]:
    """Every cgroup directory named like a container's, on every hierarchy: 'mount:relative path'."""
    names: set[str] = set()
    for mount in cgroup_mounts():
        for parent, dirs, _ in os.walk(mount):
            for d in dirs:
                if d.startswith("c") and "." in d and "-" in d:
                    names.add(f"{mount}:{os.path.relpath(os.path.join(parent, d), mount)}")
    return names


def mounts() -> list[tuple[str, str]]:
    """(mount point, fstype) of the host's mount table, as this process sees it."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            found.append((fields[4], fields[fields.index("-") + 1]))
    return found


def processes() -> dict[int, tuple[str, bytes]]:
    """pid -> (comm, environ) of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{entry}/environ", "rb") as fb:
                environ = fb.read()
            with open(f"/proc/{entry}/cmdline", "rb") as fb:
                cmdline = fb.read()
        except OSError:
            continue
        found[int(entry)] = (comm, environ + b"\0" + cmdline)
    return found


def netns_fds() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("net:"):
                count += 1
        except OSError:
            pass
    return count


def all_netns() -> set[str]:
    """Network namespaces any process is in or holds a descriptor of (host-wide context)."""
    found: set[str] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            found.add(os.readlink(f"/proc/{entry}/ns/net"))
            for fd in os.listdir(f"/proc/{entry}/fd"):
                target = os.readlink(f"/proc/{entry}/fd/{fd}")
                if target.startswith("net:"):
                    found.add(target)
        except OSError:
            continue
    return found


def entries(path: Path) -> set[str]:
    return {p.name for p in path.iterdir()} if path.is_dir() else set()


class Snapshot:
    def __init__(self, paths: Paths) -> None:
        self.mounts = mounts()
        self.cgroups = cgroup_dirs()
        self.netns_fds = netns_fds()
        self.netns = all_netns()
        self.tmp = entries(Path("/tmp"))
        self.home_tmp = entries(paths.tmp)
        self.home_run = entries(paths.run)
        self.processes = len(processes())


# --- the containers -----------------------------------------------------------------------------


def caller_main(home: str, marker: str, bridge: bool) -> None:
    """A worker stand-in: start one long container, say so, and wait to be SIGKILLed."""
    paths = Paths(Path(home))
    rootfs = Rootfs.create(paths)
    network = NetworkNamespace.create("bridge" if bridge else "none")
    spec = ContainerSpec(["sleep", "300"], cwd="/", env={"SOAK_MARKER": marker})
    spawn(spec, rootfs=rootfs, network=network, paths=paths)
    print("started", flush=True)
    time.sleep(600)


class Soak:
    def __init__(self, paths: Paths, marker: str, owners: Owners, sweep: bool = True) -> None:
        self.paths = paths
        self.sweep = sweep
        self.marker = marker
        self.owners = owners
        self.outcomes: Counter[str] = Counter()
        self.wrong: list[str] = []
        self.lock = threading.Lock()

    def note(self, kind: str, ok: bool, detail: str) -> None:
        with self.lock:
            self.outcomes[f"{kind} {'ok' if ok else 'WRONG'}"] += 1
            if not ok:
                self.wrong.append(f"{kind}: {detail}")

    def round(self, index: int, kinds: list[str]) -> None:
        bridge = index % 4 == 0
        with (
            Rootfs.create(self.paths) as rootfs,
            NetworkNamespace.create("bridge" if bridge else "none") as net,
        ):
            for kind in kinds:
                try:
                    self.one(kind, rootfs, net, bridge)
                except Exception as exc:  # the runner's own failure: counted, and the soak goes on
                    self.note(kind, False, f"{type(exc).__name__}: {exc}")

    def one(self, kind: str, rootfs: Rootfs, net: NetworkNamespace, bridge: bool) -> None:
        env = {"SOAK_MARKER": self.marker}
        if kind == "killed":
            self.killed_caller(bridge)
            return
        if kind == "normal":
            spec = ContainerSpec(["echo", "hello"], cwd="/", env=env)
        elif kind == "timeout":
            spec = ContainerSpec(["sleep", "30"], cwd="/", env=env, timeout=0.3)
        else:
            spec = ContainerSpec(["python3", "-c", OOM], cwd="/", env=env, limits=Limits(memory=MEMORY_LIMIT))
        result = run(spec, rootfs=rootfs, network=net, paths=self.paths)
        expected = {"normal": ("exited", 0), "timeout": ("timeout", 124), "oom": ("oom", 137)}[kind]
        got = (result.reason, result.exit_code)
        self.note(kind, got == expected, f"ended {got}, expected {expected}")

    def killed_caller(self, bridge: bool) -> None:
        argv = [sys.executable, __file__, "--caller", str(self.paths.home), self.marker]
        caller = subprocess.Popen(
            [*argv, *(["--bridge"] if bridge else [])], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        self.owners.add(caller.pid)
        assert caller.stdout is not None
        line = caller.stdout.readline()
        caller.send_signal(signal.SIGKILL)
        caller.wait()
        caller.stdout.close()
        if line != b"started\n":
            self.note("killed", False, f"the caller did not start its container (said {line!r})")
            return
        if self.sweep:
            records.sweep(self.paths)  # what a worker starting after it does (records.sweep_once)
        self.note("killed", True, "")


# --- main ---------------------------------------------------------------------------------------


def wait_gone(marker: bytes, owner_fds: list[str], timeout: float = 10.0) -> dict[int, str]:
    """Processes of this run still alive once `timeout` has passed (the kernel reaps asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        left = {
            pid: comm
            for pid, (comm, text) in processes().items()
            if pid != os.getpid()
            and (marker in text or (comm == "slirp4netns" and any(f.encode() in text for f in owner_fds)))
        }
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=1000, help="containers in all (default 1000)")
    parser.add_argument("--threads", type=int, default=3, help="rounds at once (default 3)")
    parser.add_argument("--quick", action="store_true", help="100 containers")
    parser.add_argument(
        "--no-sweep",
        action="store_true",
        help="skip the sweep after killed callers (shows the leak check works)",
    )
    parser.add_argument("--caller", nargs=2, metavar=("HOME", "MARKER"), help=argparse.SUPPRESS)
    parser.add_argument("--bridge", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.caller:
        caller_main(args.caller[0], args.caller[1], args.bridge)
        return 0
    if os.geteuid() != 0:
        print("soak_containers: needs root (namespaces, cgroups, overlayfs)", file=sys.stderr)
        return 2
    total = 100 if args.quick else args.n
    root = Path(tempfile.mkdtemp(prefix="soak-containers-"))
    paths = Paths(root / "home")
    marker = f"soak-{uuid.uuid4().hex}"
    owners = Owners()
    soak = Soak(paths, marker, owners, sweep=not args.no_sweep)
    before = Snapshot(paths)
    kinds = [KINDS[i % len(KINDS)] for i in range(total)]
    rounds = [kinds[i : i + 10] for i in range(0, total, 10)]
    started = time.monotonic()
    with ThreadPoolExecutor(args.threads) as pool:
        for future in [pool.submit(soak.round, i, r) for i, r in enumerate(rounds)]:
            future.result()
    elapsed = time.monotonic() - started
    if not args.no_sweep:
        records.sweep(paths)  # the last killed callers' leftovers, as the next worker would
    owner_fds = [f"/proc/{pid}/fd/" for pid, _ in owners.pids]
    left = wait_gone(marker.encode(), owner_fds)
    after = Snapshot(paths)

    home = str(paths.home)
    new_mounts = [m for m in after.mounts if m not in before.mounts]
    leaks = {
        "mounts under RUNNER_HOME": [p for p, _ in after.mounts if p.startswith(home)],
        "new nsfs mounts": [p for p, t in new_mounts if t == "nsfs"],
        "cgroups of this run": sorted(d for d in after.cgroups if owners.owns_cgroup(d.rpartition("/")[2])),
        "processes of this run": [f"{pid} {comm}" for pid, comm in sorted(left.items())],
        "netns descriptors held": ["net:"] * max(0, after.netns_fds - before.netns_fds),
        "RUNNER_HOME/tmp entries": sorted(after.home_tmp - before.home_tmp),
        "RUNNER_HOME/run records": sorted(after.home_run - before.home_run),
    }
    print(
        f"soak_containers: {total} containers in {elapsed:.1f} s ({total / elapsed:.1f}/s), "
        f"{args.threads} rounds at once, RUNNER_HOME {home}"
    )
    for outcome, count in sorted(soak.outcomes.items()):
        print(f"  {outcome:<14} {count:5d}")
    for line in soak.wrong[:10]:
        print(f"  wrong: {line}")
    print("leaks (what this run can be blamed for):")
    for what, found in leaks.items():
        print(f"  {what:<26} {len(found):5d}  {' '.join(found[:5])}")
    print("host-wide change, other processes on this machine included (context, not judged):")
    change = {
        "mounts": len(after.mounts) - len(before.mounts),
        "container-named cgroups": len(after.cgroups) - len(before.cgroups),
        "network namespaces": len(after.netns) - len(before.netns),
        "processes": after.processes - before.processes,
        "/tmp entries": len(after.tmp - before.tmp),
    }
    print("  " + ", ".join(f"{what} {n:+d}" for what, n in change.items()))
    leaked = sum(len(found) for found in leaks.values())
    if args.no_sweep:  # the demonstration over: leave the machine clean
        records.sweep(paths)
    shutil.rmtree(root, ignore_errors=True)
    if leaked or soak.wrong:
        print(f"soak_containers: FAILED: {leaked} leaks, {len(soak.wrong)} containers ended wrongly")
        return 1
    print("soak_containers: no leaks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
