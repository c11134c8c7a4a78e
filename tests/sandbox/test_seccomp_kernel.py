"""The syscall filter in real containers: denied calls fail as the policy says, everyday tools still work.

Probes are small Python programs calling libc through ctypes inside the container, so no compiler is
needed. The policy itself is tested as data in tests/security/test_seccomp_policy.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.sandbox import ContainerSpec, Limits, SandboxError, container, run, seccomp

pytestmark = pytest.mark.kernel

PROBE = textwrap.dedent(
    """
    import ctypes, errno, json, sys
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    U = ctypes.c_ulong
    calls = {
        "keyctl": (250, U(0), U(0xFFFFFFFD)),  # KEYCTL_GET_KEYRING_ID of the session keyring
        "unshare_user": (272, U(0x10000000)),
        "unshare_net": (272, U(0x40000000)),
        "clock_settime": (227, U(0), U(0)),
        "settimeofday": (164, U(0), U(0)),
        "mount": (165, None, b"/", None, U(0x20 | 0x1000), None),  # MS_REMOUNT|MS_BIND
        "bpf": (321, U(0), U(0), U(0)),
        "clone3": (435, U(0), U(0)),
        "init_module": (175, U(0), U(0), b""),
        "finit_module": (313, U(0), b"", U(0)),
        "open_by_handle_at": (304, U(3), U(0), U(0)),
        "perf_event_open": (298, U(0), U(0), U(0), U(0), U(0)),
        "userfaultfd": (323, U(0)),
        "iopl": (172, U(3)),
        "newest_plus_one": (470,),
        "vsock": (41, U(40), U(1), U(0)),
        "getppid": (110,),
    }
    out = {}
    for name, (nr, *args) in calls.items():
        result = libc.syscall(nr, *args)
        out[name] = "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]
    print(json.dumps(out))
    """
)


def probe(sh, **fields: object) -> dict[str, str]:
    ran = sh(f"python3 -c '{PROBE}'", **fields)
    assert ran.result.ok, ran.stderr
    return json.loads(ran.stdout)


def status(sh, **fields: object) -> str:
    ran = sh("grep -E '^Seccomp:' /proc/self/status | tr -d '\\t '", **fields)
    assert ran.result.ok, ran.stderr
    return ran.stdout


def test_denied_syscalls_fail_as_the_policy_says(sh):
    got = probe(sh)
    assert got == {
        "keyctl": "EPERM",
        "unshare_user": "EPERM",
        "unshare_net": "EPERM",
        "clock_settime": "EPERM",
        "settimeofday": "EPERM",
        "mount": "EPERM",
        "bpf": "EPERM",
        "clone3": "ENOSYS",  # glibc falls back to clone
        "init_module": "EPERM",
        "finit_module": "EPERM",
        "open_by_handle_at": "EPERM",
        "perf_event_open": "EPERM",
        "userfaultfd": "EPERM",
        "iopl": "EPERM",
        "newest_plus_one": "ENOSYS",
        "vsock": "EAFNOSUPPORT",
        "getppid": "ok",
    }
    assert status(sh) == "Seccomp:2"


def test_unconfined_really_relaxes(sh):
    got = probe(sh, seccomp="unconfined")
    assert status(sh, seccomp="unconfined") == "Seccomp:0"
    assert got["keyctl"] == "ok"  # keyrings answer when no filter stands in between
    assert got["clone3"] == "EINVAL"  # the kernel itself checked the (empty) clone_args
    assert got["unshare_user"] == "ok"  # what the filter is for: the kernel allows user namespaces
    assert got["getppid"] == "ok"


def test_other_abis_are_killed(sh):
    # i386 getpid through `int 0x80`, from machine code mapped executable
    int80 = (
        "import ctypes, mmap; m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ|mmap.PROT_WRITE|mmap.PROT_EXEC);"
        " m.write(bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3]));"
        " f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m))); print(f())"
    )
    ran = sh(f'exec python3 -c "{int80}"')
    assert (ran.result.exit_code, ran.result.signal) == (159, 31), ran.stdout + ran.stderr  # SIGSYS
    x32 = "import ctypes; print(ctypes.CDLL(None).syscall(0x40000000 | 39))"
    ran = sh(f'exec python3 -c "{x32}"')
    assert ran.result.signal == 31
    assert sh(f'exec python3 -c "{int80}"', seccomp="unconfined").result.signal != 31


def test_everyday_programs_work(sh, tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    script = textwrap.dedent(
        """
        set -e
        bash -c 'echo bash $BASH_VERSION | cut -c1-6; (sleep 0.1 &) ; wait'
        python3 -c 'import threading, subprocess, multiprocessing, tempfile, os
        t = threading.Thread(target=print, args=("thread",)); t.start(); t.join()
        print(subprocess.run(["echo", "subprocess"], capture_output=True, text=True).stdout.strip())
        with multiprocessing.Pool(2) as p: print("pool", sum(p.map(abs, [-1, -2])))
        os.chmod(tempfile.mkstemp()[1], 0o600); print("chmod")'
        git init -q repo && cd repo && git config user.email a@b && git config user.name a
        echo hi > f && git add f && git commit -qm one && git log --oneline | wc -l
        cd .. && git clone -q repo copy && cat copy/f
        apt-config dump | grep -c '^APT::Architecture "amd64";'
        apt-get --version | head -1 | cut -d' ' -f1
        tar czf t.tgz repo && tar tzf t.tgz | grep -c 'repo/f$'
        """
    )
    ran = sh(script, workspace=workspace, cwd="/workspace", env={"HOME": "/workspace"})
    assert ran.result.ok, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0] == "bash 5"
    assert lines[1:5] == ["thread", "subprocess", "pool 3", "chmod"]
    assert lines[5:] == ["1", "hi", "1", "apt", "1"]


def _wheel(dest: Path) -> Path:
    """A minimal pure-Python wheel, made by hand (no build backend, no network)."""
    path = dest / "probe_pkg-1.0-py3-none-any.whl"
    files = {
        "probe_pkg/__init__.py": "VALUE = 42\n",
        "probe_pkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: probe-pkg\nVersion: 1.0\n",
        "probe_pkg-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{name},,\n" for name in files) + "probe_pkg-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in {**files, "probe_pkg-1.0.dist-info/RECORD": record}.items():
            zf.writestr(name, text)
    return path


@pytest.mark.skipif(
    subprocess.run(["python3", "-m", "pip", "--version"], capture_output=True).returncode != 0,
    reason="the host's python3 has no pip",
)
def test_pip_installs_a_local_wheel(sh, tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    wheel = _wheel(workspace)
    ran = sh(
        f"python3 -m pip install -q --no-index --no-deps --target /workspace/site /workspace/{wheel.name}"
        " && PYTHONPATH=/workspace/site python3 -c 'import probe_pkg; print(probe_pkg.VALUE)'",
        workspace=workspace,
        cwd="/workspace",
        env={"HOME": "/workspace", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert ran.result.ok, ran.stdout + ran.stderr
    assert ran.stdout.splitlines()[-1] == "42"


@pytest.fixture
def zygote() -> Iterator[None]:
    container.use_zygote()
    try:
        yield
    finally:
        container.use_zygote(False)


def test_the_zygote_installs_the_same_filter(zygote, sh):
    assert status(sh) == "Seccomp:2"
    assert probe(sh)["clone3"] == "ENOSYS"
    assert status(sh, seccomp="unconfined") == "Seccomp:0"


def test_a_filter_that_cannot_be_installed_is_a_setup_error(paths, rootfs, monkeypatch):
    monkeypatch.setattr(container.seccomp, "program", lambda: b"\x00" * 7)  # not a BPF program

    with pytest.raises(SandboxError, match=r"container setup: .*prctl\(PR_SET_SECCOMP\): EINVAL"):
        run(ContainerSpec(["true"], cwd="/"), rootfs=rootfs, paths=paths)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    project = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, RUNNER_HOME=str(tmp_path / "home"), PYTHONPATH=project)
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", "sandbox", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_runner_sandbox_seccomp_flag(tmp_path: Path):
    command = ["--", "grep", "^Seccomp:", "/proc/self/status"]
    assert _cli(tmp_path, *command).stdout.split() == ["Seccomp:", "2"]
    assert _cli(tmp_path, "--seccomp", "default", *command).stdout.split() == ["Seccomp:", "2"]
    assert _cli(tmp_path, "--seccomp", "unconfined", *command).stdout.split() == ["Seccomp:", "0"]
    wrong = _cli(tmp_path, "--seccomp", "off", "--", "true")
    assert wrong.returncode == 2
    assert "invalid choice: 'off'" in wrong.stderr and "Traceback" not in wrong.stderr


def test_headless_chromium_renders_under_the_filter(sh):
    """A big, syscall-hungry program (Debian's chromium, which the browser tests install) still works."""
    page = "data:text/html,<p>rendered-under-seccomp</p>"
    ran = sh(
        "cd /tmp && HOME=/tmp exec chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage"
        f" --dump-dom '{page}' 2>/dev/null",
        limits=Limits(memory=1 << 30),
    )
    assert ran.result.ok, ran.stderr[-2000:]
    assert "<p>rendered-under-seccomp</p>" in ran.stdout


def test_without_libseccomp_spawn_refuses_and_takes_nothing(paths, rootfs, monkeypatch):
    def refuse() -> bytes:
        raise seccomp.SeccompError("seccomp: libseccomp.so.2 is not installed")

    monkeypatch.setattr(container.seccomp, "program", refuse)
    before = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(SandboxError, match=r"libseccomp\.so\.2 is not installed"):
        run(ContainerSpec(["true"], cwd="/"), rootfs=rootfs, paths=paths)
    assert sorted(os.listdir("/proc/self/fd")) == before
    unconfined = run(ContainerSpec(["true"], cwd="/", seccomp="unconfined"), rootfs=rootfs, paths=paths)
    assert unconfined.ok
