"""The escape suite (issue 7 §5): a repository whose job, as root in its container, tries every way out.

Each step runs one probe of data/escape_probes.py (`when: always`, so one success cannot hide the
rest); a probe exits 1 and prints `ESCAPED:` if anything worked. The test then checks the host
itself: canary files untouched and their content never in any output, the clock, hostname, kernel
modules and core_pattern unchanged, and no connection reached the server listening on the host's
loopback. A control test runs some probes on the host, where they must succeed, so a probe that
cannot see an escape would be caught.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from security_helpers import every_file_text, log_lines, make_repo, run_dir, runner_exec

pytestmark = pytest.mark.kernel

PROBES_FILE = Path(__file__).parent / "data" / "escape_probes.py"
PROBES = [
    *("chroot", "proc_roots", "proc1", "mknod", "dev_nodes", "sys_write", "proc_sys_write", "sysrq"),
    *("modules", "clock", "loopback", "by_handle", "ptrace", "mounts", "cgroups", "userns", "kmsg"),
    *("keys", "host_files"),
]
HOST_SAFE = ("chroot", "proc_roots", "by_handle", "loopback", "keys")  # harmless where they succeed

if os.geteuid() != 0:
    pytest.skip("the escape suite runs containers as root", allow_module_level=True)


class _Server:
    """A TCP server on the host's 127.0.0.1 that greets and counts every connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            with conn:
                conn.sendall(b"host-loopback-banner\n")

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        self.sock.close()


class _FileHandle(ctypes.Structure):
    _fields_ = [
        ("handle_bytes", ctypes.c_uint),
        ("handle_type", ctypes.c_int),
        ("f_handle", ctypes.c_ubyte * 128),
    ]


def file_handle(path: Path) -> tuple[bytes, int]:
    """name_to_handle_at(path): the handle a `shocker`-style attack would replay."""
    libc = ctypes.CDLL(None, use_errno=True)
    handle = _FileHandle(128, 0)
    mount_id = ctypes.c_int()
    if libc.name_to_handle_at(-100, os.fsencode(path), ctypes.byref(handle), ctypes.byref(mount_id), 0) != 0:
        raise OSError(ctypes.get_errno(), f"name_to_handle_at({path})")
    return bytes(handle.f_handle[: handle.handle_bytes]), handle.handle_type


@dataclass
class Host:
    token: str
    canaries: list[Path]
    server: _Server
    home: Path
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    token = f"canary-{secrets.token_hex(16)}"
    home = tmp_path / "home"
    home.mkdir()
    canaries = [
        Path("/root") / f"runner-escape-{token[-8:]}",
        Path("/tmp") / f"runner-escape-{token[-8:]}",
        home / "canary",
        tmp_path / "canary",  # beside the checkout
    ]
    for path in canaries:
        path.write_text(token + "\n")
        path.chmod(0o600)
    server = _Server()
    handle, handle_type = file_handle(canaries[0])
    dev = os.stat("/").st_dev
    with open("/proc/1/cmdline", "rb") as f:
        host_init = f.read().replace(b"\0", b" ").decode(errors="replace")
    env = {
        "CANARY_PATHS": ":".join(str(p) for p in canaries),
        "CANARY_HANDLE": handle.hex(),
        "CANARY_HANDLE_TYPE": str(handle_type),
        "HOST_DEV": f"{os.major(dev)}:{os.minor(dev)}",
        "HOST_INIT": host_init,
        "HOST_PID": str(os.getpid()),
        "HOST_PORT": str(server.port),
        "HOST_HOME": str(home),
    }
    try:
        yield Host(token, canaries, server, home, env)
    finally:
        server.close()
        for path in canaries:
            path.unlink(missing_ok=True)


def host_state() -> dict[str, object]:
    modules = None  # a kernel built without module support has no /proc/modules
    if os.path.exists("/proc/modules"):
        with open("/proc/modules") as f:
            modules = sorted(line.split()[0] for line in f)
    with open("/proc/sys/kernel/core_pattern") as f:
        core_pattern = f.read()
    return {
        "hostname": socket.gethostname(),
        "core_pattern": core_pattern,
        "modules": modules,
        "clock_skew": round(time.time() - time.monotonic()),  # a changed clock moves this
    }


def test_a_root_job_cannot_escape(host: Host, tmp_path: Path) -> None:
    steps = "\n".join(
        f"      - {{name: {name}, when: always, run: python3 probes/escape_probes.py {name}}}"
        for name in PROBES
    )
    repo = make_repo(
        tmp_path,
        f"jobs:\n  escape:\n    steps:\n{steps}\n",
        {"probes/escape_probes.py": PROBES_FILE.read_text()},
    )
    before = host_state()
    args = [arg for key, value in host.env.items() for arg in ("--env", f"{key}={value}")]
    started = time.monotonic()
    result = runner_exec(repo, *args, home=host.home, env={"ESCAPE_TEST_MARKER": "1"}, timeout=240)
    elapsed = time.monotonic() - started
    log = log_lines(repo, "escape")
    escaped = [line for line in log if "ESCAPED" in line]
    assert not escaped, "\n".join(escaped)
    blocked = {line.split(":")[1].strip() for line in log if line.startswith("blocked: ")}
    assert blocked == set(PROBES), (set(PROBES) - blocked, result.stdout[-3000:])
    summary = json.loads((run_dir(repo) / "summary.json").read_text())
    assert [(s["name"], s["status"]) for s in summary["jobs"][0]["steps"]] == [(n, "passed") for n in PROBES]
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr

    # the host, after
    assert host_state() == before
    assert host.server.connections == 0, "a job reached the host's loopback"
    for path in host.canaries:
        assert path.read_text() == host.token + "\n"
    outputs = "\n".join([result.stdout, result.stderr, every_file_text(repo / ".runner")])
    assert host.token not in outputs, "the canary's content leaked into the run's output"
    assert not Path("/escape").exists()
    assert elapsed < 120, f"the escape suite took {elapsed:.0f}s"  # generous: it must not hang


def test_the_probes_see_escapes_where_there_is_no_container(host: Host, tmp_path: Path) -> None:
    """Control: on the host, as root, these probes succeed, so `blocked` above means blocked."""
    work = tmp_path / "control"
    work.mkdir()
    script = work / "escape_probes.py"
    shutil.copy(PROBES_FILE, script)
    for name in HOST_SAFE:
        done = subprocess.run(
            [sys.executable, str(script), name],
            capture_output=True,
            text=True,
            env={**os.environ, **host.env},
            cwd=work,
            timeout=30,
        )
        assert done.returncode == 1 and done.stdout.startswith(f"ESCAPED: {name}"), (
            name,
            done.stdout,
            done.stderr,
        )
    assert host.server.connections >= 1
