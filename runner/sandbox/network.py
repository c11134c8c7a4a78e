"""Network namespaces made once per job and joined by its steps and services.

Creating and destroying a network namespace costs far more than a container, so a job makes one and
every container of the job `setns`es into it. The namespace is held by an open file descriptor of
this process, not by a bind mount: when the runner exits, even by SIGKILL, the descriptor closes and
the kernel frees the namespace, so nothing can leak.

Modes: `none` (a namespace with only loopback up), `host` (the host's network: no namespace), and
`bridge`: outbound connections only, through slirp4netns, a user-mode TCP/IP stack attached to the
job's namespace. The job sees a `tap0` with 10.0.2.100 and a default route; its connections leave from
the runner's own sockets, NAT-style, so nothing can connect in, other jobs' namespaces are not
reachable, and `--disable-host-loopback` keeps the host's 127.0.0.1 (where Redis and the API listen)
out of reach. DNS goes to slirp's forwarder at 10.0.2.3, which asks the host's resolvers.

A `bandwidth` (bits per second) shapes a bridge network both ways with tc, inside the namespace: a
token bucket (tbf) as tap0's root qdisc holds back what the job sends, and tap0's ingress is
redirected (u32 match-all, mirred) to an ifb device whose own tbf holds back what it receives. The
link's MTU is then 1500 rather than slirp's usual 65520, so one frame is not a burst of its own.
Everything goes away with the namespace.
"""

from __future__ import annotations

import os
import select
import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

from runner.sandbox import syscalls
from runner.sandbox.nsholder import namespace_fd
from runner.sandbox.types import SandboxError

MODES = ("none", "bridge", "host")
BRIDGE_DNS = "10.0.2.3"
SLIRP_READY_TIMEOUT = 10.0
_PRIVATE_MOUNTS = ("unshare", "--mount", "--propagation", "private", "--")  # exec's, no fork: same pid
TAP = "tap0"
IFB = "ifb0"
SHAPED_MTU = 1500
TC_KERNEL_HINT = "the kernel needs ifb, sch_tbf, sch_ingress, cls_u32 and act_mirred"


def shaping_commands(bits_per_second: int) -> tuple[list[str], list[str]]:
    """(ip batch lines, tc batch lines) that shape tap0 to `bits_per_second` both ways."""
    burst = max(bits_per_second // 8 // 50, 16384)  # 20 ms worth, and always several frames
    tbf = f"tbf rate {bits_per_second}bit burst {burst} latency 100ms"
    ip_lines = [f"link add {IFB} type ifb", f"link set {IFB} up"]
    tc_lines = [
        f"qdisc add dev {TAP} root {tbf}",
        f"qdisc add dev {TAP} handle ffff: ingress",
        f"filter add dev {TAP} parent ffff: protocol all u32 match u32 0 0"
        f" action mirred egress redirect dev {IFB}",
        f"qdisc add dev {IFB} root {tbf}",
    ]
    return ip_lines, tc_lines


class NetworkNamespace:
    def __init__(self, mode: str, fd: int | None, bandwidth: int | None = None) -> None:
        self.mode = mode
        self.fd = fd
        self.bandwidth = bandwidth  # bits per second each way, for bridge networks
        self._slirp: subprocess.Popen[bytes] | None = None
        self._slirp_exit: int | None = None  # closing it tells slirp4netns to exit

    @classmethod
    def create(cls, mode: str = "none", bandwidth: int | None = None) -> NetworkNamespace:
        """A network of `mode`; `bandwidth` (bits per second, both ways) needs `bridge`."""
        if bandwidth is not None and mode != "bridge":
            raise SandboxError(f"a bandwidth limit needs network 'bridge', not {mode!r}")
        if mode == "host":
            return cls("host", None)
        if mode not in ("none", "bridge"):
            raise SandboxError(f"unknown network mode {mode!r}: use none, bridge or host")
        network = cls(mode, _new_loopback_namespace(), bandwidth)
        if mode == "bridge":
            try:
                network._start_slirp()
                if bandwidth is not None:
                    network._shape(bandwidth)
            except BaseException:
                network.close()
                raise
        return network

    @property
    def resolv_conf(self) -> str | None:
        """What the containers' /etc/resolv.conf must say, or None to keep the image's."""
        return f"nameserver {BRIDGE_DNS}\noptions ndots:0\n" if self.mode == "bridge" else None

    def _start_slirp(self) -> None:
        import subprocess  # only bridge networks need it: `runner sandbox` starts faster without

        binary = shutil.which("slirp4netns")
        if binary is None:
            raise SandboxError("network 'bridge' needs slirp4netns: apt-get install slirp4netns")
        if shutil.which("unshare") is None:
            raise SandboxError("network 'bridge' needs unshare(1): apt-get install util-linux")
        assert self.fd is not None
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        exit_r, exit_w = os.pipe2(os.O_CLOEXEC)
        try:
            self._slirp = subprocess.Popen(
                [
                    # slirp's --enable-sandbox makes only `/` private before it detaches the old root, so
                    # in our mount namespace the detach would unmount host mounts under shared parents
                    # (/run/netns/*, /run/user/*): it gets a recursively private namespace of its own.
                    *_PRIVATE_MOUNTS,
                    binary,
                    "--configure",
                    f"--mtu={SHAPED_MTU if self.bandwidth else 65520}",
                    "--disable-host-loopback",
                    "--enable-sandbox",
                    "--enable-seccomp",
                    f"--ready-fd={ready_w}",
                    f"--exit-fd={exit_r}",
                    "--netns-type=path",
                    f"/proc/{os.getpid()}/fd/{self.fd}",
                    "tap0",
                ],
                pass_fds=(ready_w, exit_r),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        finally:
            os.close(ready_w)
            os.close(exit_r)
        self._slirp_exit = exit_w
        ready, _, _ = select.select([ready_r], [], [], SLIRP_READY_TIMEOUT)
        answer = os.read(ready_r, 1) if ready else b""
        os.close(ready_r)
        if answer != b"1":
            self._stop_slirp()
            raise SandboxError("slirp4netns did not bring the bridge network up")

    def _shape(self, bits_per_second: int) -> None:
        """tc inside the namespace (see the module's docstring); SandboxError naming what is missing."""
        import subprocess

        tools = {
            name: shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin") for name in ("ip", "tc")
        }
        nsenter = shutil.which("nsenter")
        for name, path in (*tools.items(), ("nsenter", nsenter)):
            if path is None:
                package = "util-linux" if name == "nsenter" else "iproute2"
                raise SandboxError(f"a bandwidth limit needs {name}: apt-get install {package}")
        assert self.fd is not None and nsenter is not None
        ip_lines, tc_lines = shaping_commands(bits_per_second)
        enter = [nsenter, f"--net=/proc/{os.getpid()}/fd/{self.fd}"]
        for tool, lines in (("ip", ip_lines), ("tc", tc_lines)):
            done = subprocess.run(
                [*enter, str(tools[tool]), "-batch", "-"],
                input="\n".join(lines) + "\n",
                capture_output=True,
                text=True,
                check=False,
                timeout=20,
            )
            if done.returncode != 0:
                detail = " ".join(done.stderr.split()) or f"exit code {done.returncode}"
                raise SandboxError(f"cannot limit the bandwidth: {tool}: {detail} ({TC_KERNEL_HINT})")

    @property
    def shared(self) -> bool:
        """True when containers must join `fd` rather than make their own namespace."""
        return self.fd is not None

    def _stop_slirp(self) -> None:
        if self._slirp_exit is not None:
            os.close(self._slirp_exit)
            self._slirp_exit = None
        if self._slirp is not None:
            import subprocess

            try:
                self._slirp.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._slirp.kill()
                self._slirp.wait()
            if self._slirp.stderr is not None:
                self._slirp.stderr.close()
            self._slirp = None

    def close(self) -> None:
        self._stop_slirp()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> NetworkNamespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _new_loopback_namespace() -> int:
    """A namespace with loopback up, held by a descriptor of ours."""

    def setup() -> None:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        syscalls.loopback_up()

    return namespace_fd("net", setup, "create a network namespace")
