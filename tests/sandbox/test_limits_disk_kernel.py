"""`disk:` measured: the job's writable layer on a size-limited filesystem of its own.

Writing past the size fails inside with ENOSPC, the host's filesystem keeps its free space, and the
loop device, its mounts and the image file are gone when the rootfs is (or, after a SIGKILL, when the
sweep has run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.sandbox import ContainerSpec, Rootfs, SandboxError, run
from runner.sandbox.disk import sweep_loops
from runner.settings import Paths

pytestmark = pytest.mark.kernel

MiB = 1024 * 1024


def sh(paths: Paths, rootfs: Rootfs, script: str, **fields: object) -> tuple[int, str]:
    out: list[bytes] = []
    spec = ContainerSpec(["sh", "-c", script], cwd="/", timeout=60, **fields)  # type: ignore[arg-type]
    result = run(spec, rootfs=rootfs, paths=paths, on_output=lambda s, line: out.append(line))
    return result.exit_code, "\n".join(x.decode() for x in out)


def backing_files() -> dict[str, str]:
    found = {}
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            found[backing.parent.parent.name] = backing.read_text().strip()
        except OSError:
            pass
    return found


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_writing_past_the_limit_is_enospc_and_the_host_keeps_its_space(paths: Paths) -> None:
    paths.tmp.mkdir(parents=True, exist_ok=True)
    before = free_bytes(paths.tmp)
    with Rootfs.create(paths) as rootfs:
        rootfs.limit_disk(64 * MiB)
        code, out = sh(
            paths,
            rootfs,
            "dd if=/dev/zero of=/big bs=1M count=100 2>&1; echo rc=$?; "
            "df -k / | tail -1; dd if=/dev/zero of=/usr/extra bs=1M count=2 2>/dev/null; echo usr=$?",
        )
        assert "No space left on device" in out, out
        assert "rc=1" in out, out
        assert "usr=1" in out, out  # every upper of the host image is on the same small disk
        written = int(out.split("records out")[0].split("\n")[-1].split("+")[0])
        assert 40 <= written < 64, out  # MiB that fit: the limit, less ext4's own metadata
        during = free_bytes(paths.tmp)
        assert before - during < 80 * MiB  # the host lost at most the job's disk
        # the next step sees the full disk (steps share the job's filesystem), and freeing works
        code, out = sh(paths, rootfs, "rm /big && dd if=/dev/zero of=/big2 bs=1M count=30 2>&1 | tail -1")
        assert code == 0, out
        number = rootfs.disk.number
        assert backing_files()[f"loop{number}"].startswith(str(rootfs.dir))
    deadline = time.monotonic() + 5  # autoclear runs as the last user goes (released on a thread)
    while backing_files().get(f"loop{number}", "").startswith(str(paths.tmp)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not backing_files().get(f"loop{number}", "").startswith(str(paths.tmp))
    assert not rootfs.dir.exists()
    assert free_bytes(paths.tmp) > before - 16 * MiB  # given back (other tests may write meanwhile)


def test_the_host_sees_no_mount_of_it(paths: Paths) -> None:
    with Rootfs.create(paths) as rootfs:
        rootfs.limit_disk(16 * MiB)
        code, out = sh(paths, rootfs, "echo hi > /file && cat /file")
        assert (code, out) == (0, "hi")
        with open("/proc/self/mountinfo") as f:
            assert str(rootfs.upper_root) not in f.read()
        assert not (rootfs.upper_root / "u" / "file").exists()  # it lives on the job's disk only


def test_a_limit_after_first_use_is_refused(paths: Paths, rootfs: Rootfs) -> None:
    assert sh(paths, rootfs, "true")[0] == 0
    with pytest.raises(SandboxError, match="before the root filesystem is first used"):
        rootfs.limit_disk(64 * MiB)


def test_too_small_a_disk_is_refused(paths: Paths, rootfs: Rootfs) -> None:
    with pytest.raises(SandboxError, match="at least 8M"):
        rootfs.limit_disk(MiB)


KILLED_RUNNER = """
import sys, time
from pathlib import Path
from runner.sandbox import ContainerSpec, Rootfs, spawn
from runner.settings import Paths
paths = Paths(Path(sys.argv[1]))
rootfs = Rootfs.create(paths)
rootfs.limit_disk(16 * 1024 * 1024)
spawn(ContainerSpec(["sleep", "60"], cwd="/"), rootfs=rootfs, paths=paths)
print(rootfs.disk.number, rootfs.dir, flush=True)
time.sleep(60)
"""


def test_a_sigkilled_runner_leaves_nothing_after_the_sweep(paths: Paths) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUNNER, str(paths.home)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    number, directory = proc.stdout.readline().decode().split()
    assert backing_files().get(f"loop{number}", "").startswith(directory)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while backing_files().get(f"loop{number}", "").startswith(directory) and time.monotonic() < deadline:
        time.sleep(0.05)  # the mounts went with the namespaces, so autoclear detaches the device
    assert not backing_files().get(f"loop{number}", "").startswith(directory)
    from runner.sandbox import records

    records.sweep(paths)
    assert not Path(directory).exists()  # the image file went with the rootfs's directory
    assert sweep_loops(paths.tmp) == []


def sandbox(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RUNNER_HOME=str(tmp_path / "home"))
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", "sandbox", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_runner_sandbox_limit_flags(tmp_path: Path) -> None:
    proc = sandbox(tmp_path, "--disk", "16M", "--", "dd", "if=/dev/zero", "of=/f", "bs=1M", "count=40")
    assert proc.returncode == 1 and "No space left on device" in proc.stderr, proc.stderr
    for args, message in (
        (["--disk", "lots"], "runner sandbox: invalid size 'lots'"),
        (
            ["--bandwidth", "1mbit"],
            "runner sandbox: --bandwidth shapes a bridge network: add --network bridge",
        ),
        (["--bandwidth", "10"], "runner sandbox: invalid bandwidth '10'"),
        (
            ["--io-write-bps", "5M", "--workspace", "/dev/shm"],
            "runner sandbox: io limits need a block device",
        ),
    ):
        proc = sandbox(tmp_path, *args, "--", "true")
        assert proc.returncode == 125 and proc.stderr.startswith(message), (args, proc.stderr)
