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
import time
from collections.abc import Iterator
from pathlib import Path

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


def in_ns(ns: str, *argv: str) -> list[str]:
    """`argv` run in the network namespace at path `ns`."""
    return ["nsenter", f"--net={ns}", "--", *argv]


@pytest.fixture
def outside_netns() -> Iterator[tuple[str, str]]:
    """(path, address) of a network namespace of the test's, reachable from the host over a veth pair:
    the stand-in for the outside world (never an outside address). It is held by a process rather
    than an `ip netns` mount, so nothing but the holder's death can take it away."""
    tag = f"{os.getpid() % 100000}"
    host_if, ns_if = f"rta{tag}", f"rtb{tag}"
    subnet = f"10.231.{os.getpid() % 250}"
    holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"])
    ns = f"/proc/{holder.pid}/ns/net"
    try:
        deadline = time.monotonic() + 10
        while os.readlink(ns) == os.readlink("/proc/self/ns/net") and time.monotonic() < deadline:
            time.sleep(0.01)  # until unshare has made the namespace
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        ip("link", "set", ns_if, "netns", str(holder.pid))
        ip("addr", "add", f"{subnet}.1/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        subprocess.run(in_ns(ns, "ip", "addr", "add", f"{subnet}.2/30", "dev", ns_if), check=True)
        subprocess.run(in_ns(ns, "ip", "link", "set", ns_if, "up"), check=True)
        subprocess.run(in_ns(ns, "ip", "link", "set", "lo", "up"), check=True)
        yield ns, f"{subnet}.2"
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=20)
        holder.kill()
        holder.wait(timeout=10)


@pytest.fixture
def outside_server(outside_netns: tuple[str, str]) -> Iterator[tuple[str, int]]:
    """A TCP server in the outside namespace, answering `hello-from-outside` on port 8080."""
    ns, address = outside_netns
    code = (
        "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('{address}', 8080)); s.listen(); print('up', flush=True)\n"
        "while True:\n  c, a = s.accept(); c.sendall(b'hello-from-outside'); c.close()"
    )
    server = subprocess.Popen(in_ns(ns, sys.executable, "-c", code), stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None and server.stdout.readline() == b"up\n"
        yield address, 8080
    finally:
        server.kill()
        server.wait(timeout=10)


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

    def accept() -> None:
        try:
            accepted.append(listener.accept())
        except OSError:  # closed at the end of the test, as it should be: nobody came
            pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        with NetworkNamespace.create("bridge") as bridge:
            assert connect(paths, rootfs, bridge, "127.0.0.1", port).startswith("refused")
            assert connect(paths, rootfs, bridge, "10.0.2.2", port).startswith(
                "refused"
            )  # slirp's host alias
        assert accepted == []
    finally:
        listener.close()


def host_addresses() -> list[str]:
    """The host's own IPv4 addresses other than loopback (eth0, veth ends...)."""
    listing = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True)
    found = [line.split()[3].split("/")[0] for line in listing.stdout.splitlines()]
    return [a for a in found if not a.startswith("127.")]


LISTEN = (
    "import socket, sys\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 9099)); s.listen(); print('up', flush=True)\n"
    "s.settimeout(float(sys.argv[1]))\n"
    "try:\n    c, a = s.accept(); print('reached from', a[0], flush=True)\n"
    "except OSError:\n    print('alone', flush=True)\n"
)


def test_a_job_cannot_reach_another_jobs_network(paths, rootfs, outside_server):
    """Two jobs on `bridge` at once: the first listens on every address of its namespace; the second
    tries the address it has (both are 10.0.2.100), slirp's gateway, the DNS forwarder and every
    address of the host. Nothing reaches the first one: jobs are only ever NATed outwards."""
    from runner.sandbox import spawn

    with NetworkNamespace.create("bridge") as first, NetworkNamespace.create("bridge") as second:
        seen: list[bytes] = []
        up = threading.Event()

        def collect(stream, line: bytes) -> None:
            seen.append(line)
            up.set()

        listener = spawn(
            ContainerSpec(["python3", "-c", LISTEN, "15"], cwd="/", timeout=60),
            rootfs=rootfs,
            network=first,
            paths=paths,
            on_output=collect,
        )
        waiter = threading.Thread(target=listener.wait)
        waiter.start()
        try:
            assert up.wait(20), seen
            assert seen == [b"up"]
            targets = ["10.0.2.100", "10.0.2.2", "10.0.2.3", *host_addresses()]
            assert len(targets) > 3  # eth0 and the veth end of `outside_server` at least
            for address in targets:
                assert connect(paths, rootfs, second, address, 9099).startswith("refused"), address
            # the second job's network works: it is not refused because it is `none`
            assert connect(paths, rootfs, second, *outside_server) == "connected hello-from-outside"
        finally:
            listener.kill()
            waiter.join(timeout=30)
        assert b"reached" not in b" ".join(seen), seen


def test_the_hosts_other_addresses_are_reachable_like_docker(paths, rootfs, outside_server):
    """Documented (docs/security.md): only the host's loopback is cut off. A service of the host bound
    to a non-loopback address answers a bridge job, as it answers anyone on that network."""
    host_side = outside_server[0].rpartition(".")[0] + ".1"  # the host's end of the veth pair
    listener = socket.socket()
    listener.bind((host_side, 0))
    listener.listen()
    port = listener.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.sendall(b"host-service")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        with NetworkNamespace.create("bridge") as bridge:
            assert connect(paths, rootfs, bridge, host_side, port) == "connected host-service"
    finally:
        listener.close()


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


DNS_RESPONDER = """
import socket, struct, sys
address = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((address, 53))
print("up", flush=True)
while True:
    query, peer = s.recvfrom(512)
    head, rest = query[:12], query[12:]
    end = rest.index(b"\\0") + 5  # the question: labels, its zero, type and class
    question, qtype = rest[:end], struct.unpack("!H", rest[end - 4 : end - 2])[0]
    labels, i = [], 0
    while rest[i]:
        labels.append(rest[i + 1 : i + 1 + rest[i]].decode()); i += rest[i] + 1
    print("asked", ".".join(labels), qtype, flush=True)
    answers = b""
    if qtype == 1 and labels[-1:] == ["test"]:  # A records for *.test only
        answers = b"\\xc0\\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(address)
    flags = 0x8180 if qtype != 1 or answers else 0x8183  # NXDOMAIN for names not ours
    reply = head[:2] + struct.pack("!HHHHH", flags, 1, 1 if answers else 0, 0, 0) + question + answers
    s.sendto(reply, peer)
"""

RESOLVE_IN_A_JOB = """
import sys
from pathlib import Path
from runner.sandbox import ContainerSpec, NetworkNamespace, Rootfs, run
from runner.settings import Paths

probe = (
    "import socket\\n"
    "print(open('/etc/resolv.conf').read().split()[1])\\n"
    "address = socket.gethostbyname('ci-outside.test')\\n"
    "print(address)\\n"
    "print(socket.create_connection((address, 8080), timeout=5).recv(100).decode())\\n"
)
paths = Paths(Path(sys.argv[1]))
out = []
with Rootfs.create(paths) as rootfs, NetworkNamespace.create("bridge") as bridge:
    result = run(ContainerSpec(["python3", "-c", probe], cwd="/", timeout=30), rootfs=rootfs,
                 network=bridge, paths=paths, on_output=lambda stream, line: out.append(line.decode()))
print("|".join(out), result.reason, result.exit_code)
"""


def test_dns_comes_from_the_hosts_resolver_configuration(tmp_path, outside_netns, outside_server):
    """The runner's /etc/resolv.conf names a DNS server of the test's (in the outside namespace); a
    bridge job asks slirp's forwarder 10.0.2.3, which asks that server: the name resolves to the
    outside server, which answers. The runner runs in a mount namespace of its own where the test's
    resolver file is bind-mounted over /etc/resolv.conf; the rest of the machine is untouched."""
    ns, address = outside_netns
    responder = subprocess.Popen(
        in_ns(ns, sys.executable, "-c", DNS_RESPONDER, address),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert responder.stdout is not None and responder.stdout.readline() == "up\n"
        resolv = tmp_path / "resolv.conf"
        resolv.write_text(f"nameserver {address}\n")
        script = tmp_path / "resolve.py"
        script.write_text(RESOLVE_IN_A_JOB)
        root = str(Path(__file__).resolve().parents[2])
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
             'mount --bind "$1" /etc/resolv.conf && exec "$2" "$3" "$4"', "sh",
             str(resolv), sys.executable, str(script), str(tmp_path / "home")],
            capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": root},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"10.0.2.3|{address}|hello-from-outside exited 0", done.stderr
    finally:
        responder.kill()
        asked = responder.communicate(timeout=10)[0]
    assert "asked ci-outside.test 1" in asked  # the answer came from the test's server, not elsewhere


def mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


def test_a_bridge_network_leaves_the_hosts_mounts_alone(tmp_path, paths, rootfs):
    """slirp4netns --enable-sandbox pivots into a tmpfs and detaches the old root, and makes only `/`
    private (not recursively): run in the host's mount namespace, the detach propagates to every host
    mount under a shared parent (the `ip netns` mounts in /run/netns, /run/user/* under systemd) and
    unmounts it on the host. The runner starts it in a private mount namespace of its own."""
    shared, child = tmp_path / "shared", tmp_path / "shared" / "child"
    shared.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "runner-test", str(shared)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(shared)], check=True)
        child.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "runner-test", str(child)], check=True)
        with NetworkNamespace.create("bridge") as bridge:
            run(ContainerSpec(["true"], cwd="/"), rootfs=rootfs, network=bridge, paths=paths)
            for _ in range(20):  # slirp sets its sandbox up beside the job: give it time to do harm
                assert mounted(child), "starting a bridge network unmounted a host mount"
                time.sleep(0.1)
    finally:
        subprocess.run(["umount", "-R", str(shared)], check=False)
