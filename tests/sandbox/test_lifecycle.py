"""Limits, results, streaming, teardown and the sweep after a crash, against the real kernel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runner.sandbox import ContainerSpec, Limits, run, spawn
from runner.sandbox.cgroups import driver

pytestmark = pytest.mark.kernel


def _mounts() -> int:
    with open("/proc/self/mountinfo") as f:
        return len(f.readlines())


def _children() -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
            out += [int(p) for p in f.read().split()]
    return out


def _runner_cgroups() -> list[str]:
    mine = f"c{os.getpid()}."
    return [n for n in driver().list_names() if n.startswith(mine)]


def test_exit_codes_and_signals(sh, paths, rootfs):
    assert sh("exit 3").result.exit_code == 3
    assert sh("true").result.ok
    # a real fault kills even pid 1 (a `kill -SEGV $$` would not: pid 1 ignores unhandled signals)
    faulting = ContainerSpec(["python3", "-c", "import ctypes; ctypes.string_at(0)"], cwd="/")
    result = run(faulting, rootfs=rootfs, paths=paths)
    assert (result.exit_code, result.signal, result.reason) == (139, 11, "killed")
    assert sh("sh -c 'kill -TERM $$'").result.exit_code == 128 + 15


def test_command_not_found_is_127(paths, rootfs):
    err: list[bytes] = []
    result = run(
        ContainerSpec(["no-such-command"], cwd="/"),
        rootfs=rootfs,
        paths=paths,
        on_output=lambda s, line: err.append(line),
    )
    assert result.exit_code == 127
    assert b"no-such-command: command not found" in b"".join(err)


def test_oom_is_reported(sh):
    ran = sh("python3 -c 'x = bytearray(300 << 20)'", limits=Limits(memory=64 << 20))
    assert ran.result.reason == "oom"
    assert ran.result.exit_code == 137
    assert ran.result.peak_memory <= 64 << 20


def test_fork_bomb_is_held_by_pids_limit(sh):
    start = time.monotonic()
    ran = sh(
        "bomb() { bomb | bomb & }; bomb 2>/dev/null; sleep 1; ls /proc | grep -cE '^[0-9]+$'",
        limits=Limits(pids=32),
        timeout=20,
    )
    assert time.monotonic() - start < 15
    count = int(ran.stdout.split()[-1])
    assert count <= 33


def test_cpu_quota_is_observable(sh):
    # A fixed amount of work: under a 0.2 CPU quota it needs at least 5x its CPU time in wall time.
    # Other load on the machine can only lengthen the wall time, never shorten it, so this cannot flake
    # into a pass or a failure because of contention.
    work = "python3 -c 'import time\nt=time.process_time()\nwhile time.process_time()-t<0.4: pass'"
    limited = sh(work, limits=Limits(cpus=0.2)).result
    assert limited.ok
    assert 0.35 < limited.cpu_time < 0.8, limited
    assert limited.wall_time / limited.cpu_time > 3.5, limited


def test_timeout_kills_the_whole_tree_fast(sh):
    start = time.monotonic()
    ran = sh("sleep 60 & (sleep 60 &) ; sleep 60", timeout=1.0)
    elapsed = time.monotonic() - start
    assert ran.result.reason == "timeout" and ran.result.exit_code == 124
    assert elapsed < 3.0
    assert _children() == []


def test_output_is_streamed_while_running(paths, rootfs):
    seen: list[tuple[float, bytes]] = []
    result = run(
        ContainerSpec(["sh", "-c", "echo first; sleep 1; echo second >&2; printf tail"], cwd="/"),
        rootfs=rootfs,
        paths=paths,
        on_output=lambda s, line: seen.append((time.monotonic(), s.encode() + b":" + line)),
    )
    assert result.ok
    assert [line for _, line in seen] == [b"stdout:first", b"stderr:second", b"stdout:tail"]
    assert seen[1][0] - seen[0][0] > 0.8  # the first line arrived before the sleep ended


def test_kill_from_another_thread(paths, rootfs):
    import threading

    container = spawn(ContainerSpec(["sleep", "60"], cwd="/"), rootfs=rootfs, paths=paths)
    threading.Timer(0.3, container.kill).start()
    start = time.monotonic()
    result = container.wait()
    assert result.reason == "killed" and result.exit_code == 137
    assert time.monotonic() - start < 3


def test_nothing_is_left_behind(paths, rootfs, sh):
    mounts_before, cgroups_before = _mounts(), _runner_cgroups()
    sh("true")
    sh("sleep 30 & sleep 30", timeout=0.5)
    sh("python3 -c 'x = bytearray(300 << 20)'", limits=Limits(memory=32 << 20))
    sh("exit 1")
    assert _mounts() == mounts_before
    assert _runner_cgroups() == cgroups_before == []
    assert _children() == []


def test_rootfs_destroy_removes_its_directory(paths):
    from runner.sandbox import Rootfs

    rootfs = Rootfs.create(paths)
    run(ContainerSpec(["sh", "-c", "echo x > /tmp/f"], cwd="/"), rootfs=rootfs, paths=paths)
    assert rootfs.dir.exists()
    rootfs.destroy()
    assert not rootfs.dir.exists()
    assert not any(paths.run.iterdir())


CRASHING_CALLER = textwrap.dedent(
    """
    import sys, time
    from runner.sandbox import ContainerSpec, Rootfs, spawn
    from runner.settings import Paths
    paths = Paths(sys.argv[1])
    rootfs = Rootfs.create(paths)
    c = spawn(ContainerSpec(["sh", "-c", "sleep 300 & sleep 300"], cwd="/"), rootfs=rootfs, paths=paths)
    print(c.pid, c.cgroup.name, rootfs.dir, flush=True)
    time.sleep(300)
    """
)


def test_caller_sigkilled_mid_run_then_swept(paths):
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CALLER, str(paths.home)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    pid1, cgroup_name, rootfs_dir = proc.stdout.readline().split()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the container's processes die with their caller (parent-death signal, then the pid namespace)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid1}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid1}")
    # what stays on disk is the cgroup and the rootfs's upper dir; the next runner to start sweeps them
    assert cgroup_name in driver().list_names()
    assert Path(rootfs_dir).exists()
    from runner.sandbox import records

    swept = records.sweep(paths)
    assert cgroup_name in swept
    assert cgroup_name not in driver().list_names()
    assert not Path(rootfs_dir).exists()


def test_sweep_leaves_live_runners_alone(paths, rootfs):
    from runner.sandbox import records

    container = spawn(ContainerSpec(["sleep", "5"], cwd="/"), rootfs=rootfs, paths=paths)
    try:
        assert records.sweep(paths) == []
        assert container.cgroup.name in driver().list_names()
        assert rootfs.dir.exists()
    finally:
        container.kill()
        container.wait()


def test_containers_start_from_many_threads_over_one_rootfs(paths, rootfs, net):
    """Parallel steps and services share a rootfs: its template and hosts file are made safely."""
    import threading

    results: list[int] = []

    def one(i: int) -> None:
        results.append(
            run(
                ContainerSpec(["sh", "-c", f"exit {i}"], cwd="/"), rootfs=rootfs, network=net, paths=paths
            ).exit_code
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == list(range(12))


def test_timeout_fires_while_the_command_keeps_printing(sh):
    start = time.monotonic()
    ran = sh("while true; do echo spam; done", timeout=1.0)
    assert ran.result.reason == "timeout"
    assert time.monotonic() - start < 4


def test_containers_have_their_own_session(sh):
    """So a terminal's Ctrl-C reaches the runner (which cancels cleanly), not the step's processes."""
    # without setsid the session's leader is outside the pid namespace and ps shows 0
    assert sh("ps -o sid= -p $$ | tr -d ' '").stdout == "1"


def test_the_sweep_works_without_a_cgroup_hierarchy(paths, monkeypatch):
    """Inside a container (the project's own pipeline) there are no cgroups: temp dirs are still swept."""
    import json

    from runner.sandbox import cgroups, records
    from runner.sandbox.types import SandboxError

    leftover = paths.tmp / "upper-of-a-dead-job"
    leftover.mkdir(parents=True)
    paths.run.mkdir(parents=True, exist_ok=True)
    (paths.run / "dead").write_text(json.dumps({"pid": 1, "start": "x", "tmp_dirs": [str(leftover)]}))

    def no_cgroups() -> cgroups.Driver:
        raise SandboxError("cgroup v1: controllers memory are not mounted under /sys/fs/cgroup")

    monkeypatch.setattr(cgroups, "driver", no_cgroups)
    assert records.sweep(paths) == ["dead"]
    assert not leftover.exists()
