"""Containers forked by the zygote behave exactly as containers forked by the caller."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from runner.sandbox import ContainerSpec, IdMap, Limits, container, run, spawn
from runner.sandbox.capabilities import DEFAULT_MASK

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def zygote() -> Iterator[None]:
    container.use_zygote()
    try:
        yield
    finally:
        container.use_zygote(False)


def test_output_exit_codes_and_signals(sh, paths, rootfs):
    ran = sh("echo out; echo err >&2; exit 5")
    assert (ran.result.exit_code, ran.stdout, ran.stderr) == (5, "out", "err")
    fault = run(
        ContainerSpec(["python3", "-c", "import ctypes; ctypes.string_at(0)"], cwd="/"),
        rootfs=rootfs,
        paths=paths,
    )
    assert (fault.exit_code, fault.signal, fault.reason) == (139, 11, "killed")


def test_privileges_are_the_same(sh):
    fields = dict(
        line.split(":\t")
        for line in sh("grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status").stdout.splitlines()
    )
    assert int(fields["CapEff"], 16) == int(fields["CapBnd"], 16) == DEFAULT_MASK
    assert fields["NoNewPrivs"] == "1"
    assert sh("echo $$; hostname", hostname="z").stdout.split() == ["1", "z"]


def test_limits_timeout_and_kill(sh, paths, rootfs):
    assert sh("python3 -c 'x = bytearray(300 << 20)'", limits=Limits(memory=48 << 20)).result.reason == "oom"
    start = time.monotonic()
    assert sh("sleep 60 & sleep 60", timeout=0.5).result.reason == "timeout"
    assert time.monotonic() - start < 3
    c = spawn(ContainerSpec(["sleep", "60"], cwd="/"), rootfs=rootfs, paths=paths)
    threading.Timer(0.2, c.kill).start()
    assert c.wait().reason == "killed"


def test_pty_and_user_namespace(sh):
    assert sh("tty", pty=True).stdout.startswith("/dev/pts/")
    assert [
        x.strip()
        for x in sh("id -u; cat /proc/self/uid_map | tr -s ' '", userns=IdMap(300000)).stdout.splitlines()
    ] == [
        "0",
        "0 300000 65536",
    ]


def test_many_threads_at_once(paths, rootfs, net):
    results: list[int] = []

    def one(i: int) -> None:
        spec = ContainerSpec(["sh", "-c", f"exit {i}"], cwd="/")
        results.append(run(spec, rootfs=rootfs, network=net, paths=paths).exit_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == list(range(12))


CRASHING_CALLER = textwrap.dedent(
    """
    import sys, time
    from runner.sandbox import ContainerSpec, Rootfs, container, spawn
    from runner.settings import Paths
    container.use_zygote()
    paths = Paths(sys.argv[1])
    c = spawn(ContainerSpec(["sleep", "300"], cwd="/"), rootfs=Rootfs.create(paths), paths=paths)
    print(c.pid, container._zygote.process.pid, flush=True)
    time.sleep(300)
    """
)


def test_the_zygote_and_its_containers_die_with_the_caller(paths):
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CALLER, str(paths.home)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    pid1, zygote_pid = (int(x) for x in proc.stdout.readline().split())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while (
        os.path.exists(f"/proc/{pid1}") or os.path.exists(f"/proc/{zygote_pid}")
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid1}")
    assert not os.path.exists(f"/proc/{zygote_pid}")


ENV_SWITCHED = textwrap.dedent(
    """
    import os, sys
    from runner.sandbox import ContainerSpec, Rootfs, container, run
    from runner.settings import Paths
    paths = Paths(sys.argv[1])
    with Rootfs.create(paths) as rootfs:
        assert run(ContainerSpec(["true"], cwd="/"), rootfs=rootfs, paths=paths).ok
        parent_zygote = container._zygote.process.pid
        pid = os.fork()
        if pid == 0:  # a forked child (a Celery pool process) gets a zygote of its own
            ok = run(ContainerSpec(["true"], cwd="/"), rootfs=rootfs, paths=paths).ok
            os._exit(0 if ok and container._zygote.process.pid != parent_zygote else 1)
        _, status = os.waitpid(pid, 0)
        print("child ok" if status == 0 else "child failed", flush=True)
    """
)


def test_runner_zygote_env_starts_one_per_process(paths):
    container.use_zygote(False)
    env = dict(os.environ, RUNNER_ZYGOTE="1")
    proc = subprocess.run(
        [sys.executable, "-c", ENV_SWITCHED, str(paths.home)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "child ok", proc.stderr
