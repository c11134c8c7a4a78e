"""`bandwidth:` measured: a bridge job downloads from and uploads to a server of the test's own.

The server lives in a network namespace this test makes (a veth pair from the host), never an
outside address. The limit is shaped with tc inside the job's namespace; the rates are measured
inside the container, from the first byte asked for to the last byte the other side received.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from runner.sandbox import ContainerSpec, NetworkNamespace, SandboxError, run
from runner.sandbox.network import shaping_commands

pytestmark = pytest.mark.kernel

SIZE = 2 * 1000 * 1000  # bytes each way: 2 s at 8mbit
LIMIT = 8_000_000  # bits per second

SERVER = (
    "import socket, threading\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind((ADDRESS, 8081)); s.listen(); print('up', flush=True)\n"
    "def serve(c):\n"
    "    f = c.makefile('rb')\n"
    "    verb, n = f.readline().split(); n = int(n)\n"
    "    if verb == b'get':\n"
    "        c.sendall(b'x' * n)\n"
    "    else:\n"
    "        got = 0\n"
    "        while got < n:\n"
    "            d = f.read1(65536)\n"
    "            if not d: break\n"
    "            got += len(d)\n"
    "        c.sendall(b'%d\\n' % got)\n"
    "    c.close()\n"
    "while True:\n"
    "    c, a = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()\n"
)

CLIENT = (
    "import json, socket, sys, time\n"
    "host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n"
    "out = {}\n"
    "s = socket.create_connection((host, port), timeout=30); t = time.monotonic()\n"
    "s.sendall(b'get %d\\n' % n); got = 0\n"
    "while got < n:\n"
    "    d = s.recv(65536)\n"
    "    if not d: break\n"
    "    got += len(d)\n"
    "out['down'] = (got, time.monotonic() - t); s.close()\n"
    "s = socket.create_connection((host, port), timeout=30); t = time.monotonic()\n"
    "s.sendall(b'put %d\\n' % n); s.sendall(b'y' * n)\n"
    "ack = int(s.makefile('rb').readline())\n"
    "out['up'] = (ack, time.monotonic() - t)\n"
    "print(json.dumps(out))\n"
)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@pytest.fixture
def data_server() -> Iterator[tuple[str, int]]:
    """A TCP server that sends `get N` bytes and counts `put N` bytes, in its own network namespace."""
    tag = f"{os.getpid() % 100000}"
    ns, host_if, ns_if = f"rbw{tag}", f"rbwa{tag}", f"rbwb{tag}"
    subnet = f"10.232.{os.getpid() % 250}"
    ip("netns", "add", ns)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        ip("link", "set", ns_if, "netns", ns)
        ip("addr", "add", f"{subnet}.1/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", ns, "addr", "add", f"{subnet}.2/30", "dev", ns_if)
        ip("-n", ns, "link", "set", ns_if, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        code = SERVER.replace("ADDRESS", repr(f"{subnet}.2"))
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", code], stdout=subprocess.PIPE
        )
        assert server.stdout is not None and server.stdout.readline() == b"up\n"
        try:
            yield f"{subnet}.2", 8081
        finally:
            server.kill()
            server.wait(timeout=10)
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=20)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def transfer(paths, rootfs, network, host: str, port: int) -> dict[str, tuple[int, float]]:
    out: list[bytes] = []
    spec = ContainerSpec(["python3", "-c", CLIENT, host, str(port), str(SIZE)], cwd="/", timeout=60)
    result = run(
        spec, rootfs=rootfs, network=network, paths=paths, on_output=lambda s, line: out.append(line)
    )
    assert result.ok, out
    return json.loads(out[-1])


def test_downloads_and_uploads_run_at_the_limit(paths, rootfs, data_server):
    with NetworkNamespace.create("bridge") as free:
        unlimited = transfer(paths, rootfs, free, *data_server)
    with NetworkNamespace.create("bridge", bandwidth=LIMIT) as shaped:
        limited = transfer(paths, rootfs, shaped, *data_server)
    print("unlimited", unlimited, "limited", limited)
    for way in ("down", "up"):
        size, seconds = limited[way]
        assert size == SIZE, (way, limited)
        rate = size * 8 / seconds
        assert 0.5 * LIMIT <= rate <= 1.3 * LIMIT, (way, rate, limited)
        assert unlimited[way][1] * 2 < seconds, (way, unlimited, limited)  # clearly slower than unlimited


def test_bandwidth_needs_a_bridge_network():
    for mode in ("none", "host"):
        with pytest.raises(SandboxError, match="needs network 'bridge'"):
            NetworkNamespace.create(mode, bandwidth=LIMIT)


def test_shaping_commands_cover_both_ways():
    ip_lines, tc_lines = shaping_commands(10_000_000)
    assert ip_lines == ["link add ifb0 type ifb", "link set ifb0 up"]
    assert tc_lines[0] == "qdisc add dev tap0 root tbf rate 10000000bit burst 25000 latency 100ms"
    assert "mirred egress redirect dev ifb0" in tc_lines[2]
    assert tc_lines[3].startswith("qdisc add dev ifb0 root tbf rate 10000000bit")
    assert shaping_commands(64_000)[1][0].split()[9] == "16384"  # a burst of several frames at low rates
