"""User namespaces by default: container root is a subordinate host uid, files keep their real owners."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.sandbox import ContainerSpec, IdMap, Mount, Rootfs, run, spawn, userns
from runner.sandbox.capabilities import DEFAULT_MASK
from runner.settings import Paths

pytestmark = pytest.mark.kernel

HOST_START = 200000
ROOT = Path(__file__).resolve().parents[2]


def _lines(out: list[bytes]) -> list[str]:
    return [x.decode().strip() for x in out]


def test_a_step_process_is_the_subordinate_uid_seen_from_the_host(paths, rootfs, net, tmp_path):
    base = userns.default_idmap().host_start
    spec = ContainerSpec(["sh", "-c", "touch /tmp/made; exec sleep 30"], cwd="/")
    container = spawn(spec, rootfs=rootfs, network=net, paths=paths)
    try:
        assert container.userns == userns.default_idmap()
        made = Path(f"/proc/{container.pid}/root/tmp/made")
        deadline = time.monotonic() + 10
        while not made.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        status = Path(f"/proc/{container.pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert uids == [str(base)] * 4
        assert made.stat().st_uid == base  # the host sees the process's files as its subordinate uid...
        assert (rootfs.dir / "u" / "tmp" / "made").stat().st_uid == 0  # ...stored on disk as root's
    finally:
        container.kill()
        container.wait()


def test_root_inside_and_the_images_files_keep_their_owners(sh):
    ran = sh(
        "id -u; id -g; cat /proc/self/uid_map | tr -s ' '; echo $$;"
        " stat -c '%u:%g %n' /usr/bin/su /etc/passwd /dev/null /etc/hosts /root;"
        " ls /proc | grep -cE '^[0-9]+$'"
    )
    assert ran.result.ok, ran.stderr
    lines = ran.stdout.splitlines()
    idmap = userns.default_idmap()
    assert lines[:4] == ["0", "0", f" 0 {idmap.host_start} {idmap.count}", "1"]
    assert lines[4:9] == [
        "0:0 /usr/bin/su",
        "0:0 /etc/passwd",
        "0:0 /dev/null",
        "0:0 /etc/hosts",
        "0:0 /root",
    ]
    assert int(lines[9]) < 10  # its own pid namespace's /proc


def test_workspace_files_are_stored_with_their_real_owners(sh, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "checkout.txt").write_text("x")
    os.chown(ws / "checkout.txt", 1000, 1000)
    ran = sh(
        "stat -c %u /workspace/checkout.txt; touch /workspace/made; mkdir /workspace/d;"
        " touch /workspace/given && chown 1234:1235 /workspace/given; su -s /bin/sh nobody -c 'id -u'",
        workspace=ws,
    )
    assert ran.result.ok, ran.stderr
    assert ran.stdout.splitlines() == ["1000", "65534"]
    for name in ("made", "d"):
        assert ((ws / name).stat().st_uid, (ws / name).stat().st_gid) == (0, 0)
    assert ((ws / "given").stat().st_uid, (ws / "given").stat().st_gid) == (1234, 1235)


def test_container_root_capabilities_stop_at_the_namespace(sh, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    secret = ws / "host-only"
    secret.write_text("secret")
    os.chmod(secret, 0o600)
    os.chown(secret, 100000, 100000)  # a host uid outside the container's 65536: no capability reaches it
    script = (
        "stat -c %u /workspace/host-only; cat /workspace/host-only || echo no-read;"
        " chown 0 /workspace/host-only || echo no-chown; grep CapEff /proc/self/status"
    )
    inside = sh(script, workspace=ws)
    effective = f"CapEff:\t{DEFAULT_MASK:016x}"
    assert inside.stdout.splitlines() == ["65534", "no-read", "no-chown", effective], inside.stderr
    assert secret.stat().st_uid == 100000
    # the same reduced capability set as the host's root (no user namespace) does reach it
    outside = sh("cat /workspace/host-only", workspace=ws, userns=None)
    assert outside.stdout == "secret"


def test_low_ports_and_ping_work_in_the_jobs_network(sh):
    ran = sh(
        'python3 -c \'import socket; s = socket.socket(); s.bind(("127.0.0.1", 80)); print("bound")\';'
        " python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP);"
        ' print("icmp")\''
    )
    assert ran.stdout.splitlines() == ["bound", "icmp"], ran.stderr


def test_an_explicit_mapping_and_an_image_user(paths, rootfs, net, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    os.chmod(ws, 0o777)
    out: list[bytes] = []
    spec = ContainerSpec(
        ["sh", "-c", "id -u; cat /proc/self/uid_map | tr -s ' '; touch /workspace/by-user"],
        workspace=ws,
        userns=IdMap(HOST_START),
        uid=1000,
        gid=1000,
    )
    result = run(spec, rootfs=rootfs, network=net, paths=paths, on_output=lambda s, line: out.append(line))
    assert result.ok, _lines(out)
    assert _lines(out) == ["1000", f"0 {HOST_START} 65536"]
    assert (ws / "by-user").stat().st_uid == 1000


def test_an_id_outside_the_mapping_is_a_clear_error(paths, rootfs, net):
    from runner.sandbox import SandboxError

    with pytest.raises(SandboxError, match="outside the user namespace"):
        run(ContainerSpec(["true"], cwd="/", uid=70000), rootfs=rootfs, network=net, paths=paths)


def test_signals_exit_codes_and_timeouts(paths, rootfs, net):
    crash = ContainerSpec(["python3", "-c", "import ctypes; ctypes.string_at(0)"], cwd="/")
    result = run(crash, rootfs=rootfs, network=net, paths=paths)
    assert (result.exit_code, result.signal, result.reason) == (139, 11, "killed")
    assert run(ContainerSpec(["sh", "-c", "exit 9"], cwd="/"), rootfs=rootfs, paths=paths).exit_code == 9
    slow = ContainerSpec(["sh", "-c", "sleep 60 & sleep 60"], cwd="/", timeout=0.5)
    assert run(slow, rootfs=rootfs, paths=paths).reason == "timeout"


def test_runner_userns_off_and_no_userns(paths, net, monkeypatch):
    monkeypatch.setenv("RUNNER_USERNS", "off")
    out: list[bytes] = []
    with Rootfs.create(paths) as rootfs:
        spec = ContainerSpec(["cat", "/proc/self/uid_map"], cwd="/")
        assert run(spec, rootfs=rootfs, network=net, paths=paths, on_output=lambda s, x: out.append(x)).ok
        assert rootfs.userns_note is not None and "RUNNER_USERNS=off" in rootfs.userns_note
    assert " ".join(_lines(out)[0].split()) == "0 0 4294967295"
    monkeypatch.setenv("RUNNER_USERNS", "sometimes")
    with pytest.raises(Exception, match="RUNNER_USERNS='sometimes' is not valid"):
        userns.setting()


def test_a_filesystem_without_idmapped_mounts_falls_back_and_says_why(tmp_path):
    """ramfs refuses idmapped mounts (the kernel's answer, not a simulation): with the workspace on
    one, `runner sandbox` runs without a user namespace and says so on stderr."""
    ws = tmp_path / "ramfs"
    ws.mkdir()
    command = "sh -c 'cat /proc/self/uid_map; cat f'"
    script = (
        f"mount -t ramfs ramfs {ws} && echo hi > {ws}/f &&"
        f" exec {sys.executable} -m runner.cli sandbox --workspace {ws} -- {command}"
    )
    env = {**os.environ, "RUNNER_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    private = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
    done = subprocess.run(
        [*private, script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert " ".join(done.stdout.split()) == "0 0 4294967295 hi"
    assert "user namespace unavailable" in done.stderr
    assert "refuses idmapped mounts" in done.stderr and "mount_setattr" in done.stderr
    insisted = subprocess.run(
        [*private, script.replace("sandbox", "sandbox --userns")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert insisted.returncode == 125 and "refuses idmapped mounts" in insisted.stderr


def test_extra_mounts_are_idmapped_too(sh, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    ran = sh("touch /cache/new; stat -c %u /cache", mounts=[Mount(cache, "/cache", readonly=False)])
    assert ran.result.ok and ran.stdout == "0", ran.stderr
    assert (cache / "new").stat().st_uid == 0


def test_subordinate_ranges_come_from_subuid_for_runner_then_root(tmp_path):
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("alice:100000:65536\nroot:300000:65536\n")
    subgid.write_text("root:400000:65536\n")
    assert userns.subordinate_range(str(subuid), str(subgid)) == IdMap(300000, 65536, 400000)
    subuid.write_text("root:300000:65536\nrunner:500000:1000\n")
    subgid.write_text("runner:600000:70000\n")
    assert userns.subordinate_range(str(subuid), str(subgid)) == IdMap(500000, 1000, 600000)
    missing = str(tmp_path / "none")
    assert userns.subordinate_range(missing, missing) == IdMap(userns.DEFAULT_BASE, 65536)
    assert userns.DEFAULT_BASE == 1 << 30


def test_the_userns_fd_is_one_per_mapping(paths: Paths):
    assert userns.userns_fd(IdMap(HOST_START)) == userns.userns_fd(IdMap(HOST_START))
    assert userns.userns_fd(IdMap(HOST_START)) != userns.userns_fd(IdMap(HOST_START + 65536))


def test_a_terminal_belongs_to_container_root_and_the_tty_group(sh):
    ran = sh("stat -c '%u %g' $(tty)", pty=True)
    assert ran.result.ok and ran.stdout.strip() == "0 5", ran.stdout
