"""`io:` measured: direct I/O to the workspace and to the writable layer runs at the limit.

cgroup v1 (this host) throttles only I/O its tasks submit themselves, so the tests use
`oflag=direct`/`iflag=direct`; buffered writes land in the page cache unthrottled (see limits.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.sandbox import ContainerSpec, Limits, Rootfs, SandboxError, run, spawn
from runner.sandbox.cgroups import V1Driver, driver
from runner.sandbox.limits import device_of
from runner.settings import Paths

pytestmark = pytest.mark.kernel

MiB = 1024 * 1024
RATE = 10 * MiB  # bytes per second; 20 MiB take 2 s at it
WRITE = "dd if=/dev/zero of={path} bs=1M count=20 oflag=direct 2>&1 | tail -1"
READ = "dd if={path} of=/dev/null bs=1M iflag=direct 2>&1 | tail -1"


def timed(paths: Paths, rootfs: Rootfs, script: str, workspace: Path, limits: Limits) -> float:
    out: list[bytes] = []
    spec = ContainerSpec(["sh", "-c", script], cwd="/", workspace=workspace, limits=limits, timeout=60)
    result = run(spec, rootfs=rootfs, paths=paths, on_output=lambda s, line: out.append(line))
    assert result.ok, out
    match = re.search(rb"copied, ([0-9.]+) s", out[-1])
    assert match is not None and b"20971520 bytes" in out[-1], out
    return float(match.group(1))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


def test_direct_writes_and_reads_of_the_workspace_run_at_the_limit(paths, rootfs, workspace):
    target = "/workspace/f"
    free_write = timed(paths, rootfs, WRITE.format(path=target), workspace, Limits())
    limited_write = timed(paths, rootfs, WRITE.format(path=target), workspace, Limits(io_write_bps=RATE))
    free_read = timed(paths, rootfs, READ.format(path=target), workspace, Limits())
    limited_read = timed(paths, rootfs, READ.format(path=target), workspace, Limits(io_read_bps=RATE))
    for free, limited in ((free_write, limited_write), (free_read, limited_read)):
        assert 1.5 <= limited <= 6.0, (free, limited)  # 20 MiB at 10 MiB/s: about 2 s
        assert free * 3 < limited, (free, limited)


def test_the_writable_layer_is_throttled_too_on_its_own_disk(paths, workspace):
    with Rootfs.create(paths) as rootfs:
        rootfs.limit_disk(64 * MiB)
        seconds = timed(paths, rootfs, WRITE.format(path="/f"), workspace, Limits(io_write_bps=RATE))
    assert 1.5 <= seconds <= 6.0, seconds


def test_the_limits_are_written_for_the_disks_under_the_container(paths, workspace):
    with Rootfs.create(paths) as rootfs:
        rootfs.limit_disk(16 * MiB)
        spec = ContainerSpec(
            ["sleep", "0.2"], cwd="/", workspace=workspace, limits=Limits(io_write_bps=1234567)
        )
        container = spawn(spec, rootfs=rootfs, paths=paths)
        if isinstance(driver(), V1Driver):
            blkio = next(d for d in container.cgroup.dirs if "blkio" in str(d))
            lines = (blkio / "blkio.throttle.write_bps_device").read_text().split("\n")
            expected = "{0}:{1} 1234567"
        else:
            lines = (container.cgroup.main / "io.max").read_text().split("\n")
            expected = "{0}:{1} rbps=max wbps=1234567 riops=max wiops=max"
        assert container.wait().ok
        loop = rootfs.disk.number
    assert expected.format(*device_of(workspace)) in lines
    assert expected.format(7, loop) in lines  # the job's loop device


def test_a_workspace_on_tmpfs_cannot_be_throttled(paths, rootfs):
    shm = Path("/dev/shm")
    spec = ContainerSpec(["true"], cwd="/", workspace=shm, limits=Limits(io_read_bps=RATE))
    with pytest.raises(SandboxError, match=r"io limits need a block device under /dev/shm.*tmpfs"):
        run(spec, rootfs=rootfs, paths=paths)


def test_cgroup_v2_here_cannot_throttle_and_says_which_controller(monkeypatch):
    """This host's v2 hierarchy delegates no io (or pids) controller: a limit fails with the reason, and
    the jobs' default pids limit is left out there rather than failing every job."""
    from runner.config.spec import JobSpec, StepSpec
    from runner.pipeline.job import job_limits
    from runner.sandbox import cgroups

    mount = next((Path(p) for p, fstype, _ in cgroups._mountinfo() if fstype == "cgroup2"), None)
    assert mount is not None, "no cgroup2 filesystem is mounted on this machine"
    v2 = cgroups.V2Driver(mount)
    assert not v2.can_limit("io") and not v2.can_limit("pids")
    with pytest.raises(SandboxError, match=r"an io limit needs the io controller, which cgroup v2 at"):
        v2.create("c-io-test", Limits(io_read_bps=RATE), [(8, 0)])
    job = JobSpec(name="j", base_name="j", steps=(StepSpec(name="s", run="true"),))
    assert job_limits(job).pids is not None  # this host's v1 driver has pids
    monkeypatch.setattr(cgroups, "_driver", v2)
    assert job_limits(job).pids is None
