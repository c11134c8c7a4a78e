"""The cgroup v2 driver, run for real on this host's v2 hierarchy.

This machine mounts cgroup2 beside v1 with no memory, cpu or pids controller to delegate, so what v2
can do here is exercised end to end (a whole container in a v2 cgroup: joining, cpu.stat, populated
events, cgroup.kill, removal), and limits are checked to fail with a clear message rather than
silently. Memory/pids/cpu limits under v2 cannot run on this machine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from runner.sandbox import ContainerSpec, Limits, SandboxError, cgroups, run, spawn

pytestmark = pytest.mark.kernel


def _cgroup2_mount() -> Path | None:
    for point, fstype, _ in cgroups._mountinfo():
        if fstype == "cgroup2":
            return Path(point)
    return None


@pytest.fixture
def v2(monkeypatch: pytest.MonkeyPatch) -> cgroups.V2Driver:
    mount = _cgroup2_mount()
    if mount is None:
        pytest.fail("no cgroup2 filesystem is mounted on this machine")
    driver = cgroups.V2Driver(mount)
    monkeypatch.setattr(cgroups, "_driver", driver)
    return driver


def test_container_in_a_v2_cgroup(v2, paths, rootfs):
    out: list[bytes] = []
    spec = ContainerSpec(
        [
            "python3",
            "-c",
            "import time\nt=time.process_time()\nwhile time.process_time()-t<0.2: pass\nprint('ok')",
        ],
        cwd="/",
    )
    result = run(spec, rootfs=rootfs, paths=paths, on_output=lambda s, line: out.append(line))
    assert result.ok and out == [b"ok"]
    assert result.cpu_time >= 0.15  # read from cpu.stat usage_usec
    assert v2.list_names() == [] or all(not n.startswith(f"c{os.getpid()}.") for n in v2.list_names())


def test_v2_kill_and_removal(v2, paths, rootfs):
    container = spawn(ContainerSpec(["sh", "-c", "sleep 60 & sleep 60"], cwd="/"), rootfs=rootfs, paths=paths)
    cg = container.cgroup
    try:
        assert cg.version == 2 and cg.main.parent == v2.base
        assert cg.populated()
        deadline = time.monotonic() + 5
        while len(cg.pids()) < 2 and time.monotonic() < deadline:  # sh forks its sleeps after exec
            time.sleep(0.01)
        assert len(cg.pids()) >= 2
        cg.kill()  # cgroup.kill
        start = time.monotonic()
    finally:
        container.kill()
        result = container.wait()
    assert time.monotonic() - start < 2
    assert result.reason == "killed"
    assert not cg.main.exists()


def test_v2_limits_without_delegated_controllers_fail_clearly(v2, paths, rootfs):
    v2._prepare()
    missing = [c for c in ("memory", "pids", "cpu") if c not in v2.available]
    if not missing:
        pytest.fail("this host delegates every v2 controller; the limits themselves should be tested instead")
    limits = {"memory": Limits(memory=64 << 20), "pids": Limits(pids=10), "cpu": Limits(cpus=0.5)}[missing[0]]
    with pytest.raises(SandboxError, match=f"needs the {missing[0]} controller"):
        run(ContainerSpec(["true"], cwd="/", limits=limits), rootfs=rootfs, paths=paths)


def test_driver_choice(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cgroups, "_driver", None)
    monkeypatch.setenv("RUNNER_CGROUP", "v2")
    assert cgroups.driver().version == 2
    monkeypatch.setattr(cgroups, "_driver", None)
    monkeypatch.setenv("RUNNER_CGROUP", "v1")
    assert cgroups.driver().version == 1
    monkeypatch.setattr(cgroups, "_driver", None)
    monkeypatch.delenv("RUNNER_CGROUP")
    pure_v2 = any(p == "/sys/fs/cgroup" and t == "cgroup2" for p, t, _ in cgroups._mountinfo())
    assert cgroups.driver().version == (2 if pure_v2 else 1)
