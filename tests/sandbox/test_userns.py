"""User namespaces, as the code supports them now (default-on and idmapped layers come with hardening)."""

from __future__ import annotations

import os

import pytest

from runner.sandbox import ContainerSpec, IdMap, run

pytestmark = pytest.mark.kernel

HOST_START = 200000


def test_root_inside_is_an_unprivileged_host_uid(paths, rootfs, net, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    os.chown(ws, HOST_START, HOST_START)
    out: list[bytes] = []
    script = (
        "id -u; cat /proc/self/uid_map | tr -s ' '; echo $$; touch /workspace/made;"
        " ls /proc | grep -cE '^[0-9]+$'; wc -c < /proc/keys; hostname"
    )
    spec = ContainerSpec(["sh", "-c", script], workspace=ws, userns=IdMap(HOST_START), hostname="u1")
    result = run(spec, rootfs=rootfs, network=net, paths=paths, on_output=lambda s, line: out.append(line))
    lines = [x.decode().strip() for x in out]
    assert result.ok, lines
    assert lines[0] == "0"
    assert lines[1] == f"0 {HOST_START} 65536"
    assert lines[2] == "1"
    assert int(lines[3]) < 10  # its own /proc, not the host's
    assert lines[4:] == ["0", "u1"]  # masked /proc/keys, own hostname
    assert os.stat(ws / "made").st_uid == HOST_START


def test_host_root_files_are_not_writable_by_container_root(paths, rootfs, net, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()  # owned by the host's root, which is not mapped into the namespace
    out: list[bytes] = []
    spec = ContainerSpec(["sh", "-c", "touch /workspace/x"], workspace=ws, userns=IdMap(HOST_START))
    result = run(spec, rootfs=rootfs, network=net, paths=paths, on_output=lambda s, line: out.append(line))
    assert result.exit_code == 1
    assert not (ws / "x").exists()


def test_signals_and_exit_codes_are_relayed(paths, rootfs, net):
    spec = ContainerSpec(
        ["python3", "-c", "import ctypes; ctypes.string_at(0)"], cwd="/", userns=IdMap(HOST_START)
    )
    result = run(spec, rootfs=rootfs, network=net, paths=paths)
    assert (result.exit_code, result.signal, result.reason) == (139, 11, "killed")
    assert (
        run(
            ContainerSpec(["sh", "-c", "exit 9"], cwd="/", userns=IdMap(HOST_START)),
            rootfs=rootfs,
            paths=paths,
        ).exit_code
        == 9
    )


def test_timeout_in_a_user_namespace(paths, rootfs):
    spec = ContainerSpec(["sh", "-c", "sleep 60 & sleep 60"], cwd="/", userns=IdMap(HOST_START), timeout=0.5)
    result = run(spec, rootfs=rootfs, paths=paths)
    assert result.reason == "timeout"
