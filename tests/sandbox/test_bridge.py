"""The `bridge` network: outbound only, through slirp4netns; never the host's loopback, never another job.

The outside world of these tests is a server in a network namespace the test makes itself (a veth pair
from the host), never an outside address.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from runner.sandbox import ContainerSpec, NetworkNamespace, run

pytestmark = pytest.mark.kernel

CONNECT = (
    "import socket, sys\n"
    "s = socket.socket(); s.settimeout(3)\n"
    "try:\n"
    "    s.connect((sys.argv[1], int(sys.argv[2]))); print('connected', s.recv(100).decode())\n"
    "except OSError as e:\n"
    "    print('refused', type(e).__name__)\n"
)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@pytest.fixture
def outside_server() -> Iterator[tuple[str, int]]:
    """A TCP server in its own network namespace, reachable from the host over a veth pair."""
    tag = f"{os.getpid() % 100000}"
    ns, host_if, ns_if = f"rt{tag}", f"rta{tag}", f"rtb{tag}"
    subnet = f"10.231.{os.getpid() % 250}"
    ip("netns", "add", ns)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        ip("link", "set", ns_if, "netns", ns)
        ip("addr", "add", f"{subnet}.1/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", ns, "addr", "add", f"{subnet}.2/30", "dev", ns_if)
        ip("-n", ns, "link", "set", ns_if, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        server = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                "-c",
                "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                f"s.bind(('{subnet}.2', 8080)); s.listen(); print('up', flush=True)\n"
                "while True:\n  c, a = s.accept(); c.sendall(b'hello-from-outside'); c.close()",
            ],
            stdout=subprocess.PIPE,
        )
        assert server.stdout is not None and server.stdout.readline() == b"up\n"
        try:
            yield f"{subnet}.2", 8080
        finally:
            server.kill()
            server.wait(timeout=10)
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=20)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def connect(paths, rootfs, network, host: str, port: int) -> str:
    out: list[bytes] = []
    spec = ContainerSpec(["python3", "-c", CONNECT, host, str(port)], cwd="/", timeout=20)
    result = run(
        spec, rootfs=rootfs, network=network, paths=paths, on_output=lambda s, line: out.append(line)
    )
    assert result.ok, out
    return b"\n".join(out).decode()


def test_outbound_connections_work(paths, rootfs, outside_server):
    with NetworkNamespace.create("bridge") as bridge:
        assert connect(paths, rootfs, bridge, *outside_server) == "connected hello-from-outside"
    with NetworkNamespace.create("none") as isolated:  # and `none` really is none
        assert connect(paths, rootfs, isolated, *outside_server).startswith("refused")


def test_the_hosts_loopback_is_out_of_reach(paths, rootfs):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    accepted: list[object] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    try:
        with NetworkNamespace.create("bridge") as bridge:
            assert connect(paths, rootfs, bridge, "127.0.0.1", port).startswith("refused")
            assert connect(paths, rootfs, bridge, "10.0.2.2", port).startswith(
                "refused"
            )  # slirp's host alias
        assert accepted == []
    finally:
        listener.close()


def test_jobs_cannot_reach_each_other(paths, rootfs):
    from runner.sandbox import spawn

    with NetworkNamespace.create("bridge") as first, NetworkNamespace.create("bridge") as second:
        server = spawn(
            ContainerSpec(
                [
                    "python3",
                    "-c",
                    "import socket\ns=socket.socket(); s.bind(('0.0.0.0', 9099)); s.listen();"
                    " print('up', flush=True); s.settimeout(4)\ntry:\n  s.accept(); print('reached')\n"
                    "except OSError:\n  print('alone')",
                ],
                cwd="/",
            ),
            rootfs=rootfs,
            network=first,
            paths=paths,
            on_output=lambda s, line: seen.append(line),
        )
        seen: list[bytes] = []
        assert connect(paths, rootfs, second, "10.0.2.100", 9099).startswith("refused")
        assert server.wait().ok
        assert seen == [b"up", b"alone"]


def test_dns_points_at_the_forwarder_and_slirp_goes_with_the_network(paths, rootfs):
    bridge = NetworkNamespace.create("bridge")
    slirp = bridge._slirp
    assert slirp is not None
    out: list[bytes] = []
    run(
        ContainerSpec(["cat", "/etc/resolv.conf"], cwd="/"),
        rootfs=rootfs,
        network=bridge,
        paths=paths,
        on_output=lambda s, line: out.append(line),
    )
    assert out[0] == b"nameserver 10.0.2.3"
    bridge.close()
    assert slirp.poll() is not None
