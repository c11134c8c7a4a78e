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


class NetworkNamespace:
    def __init__(self, mode: str, fd: int | None) -> None:
        self.mode = mode
        self.fd = fd
        self._slirp: subprocess.Popen[bytes] | None = None
        self._slirp_exit: int | None = None  # closing it tells slirp4netns to exit

    @classmethod
    def create(cls, mode: str = "none") -> NetworkNamespace:
        if mode == "host":
            return cls("host", None)
        if mode not in ("none", "bridge"):
            raise SandboxError(f"unknown network mode {mode!r}: use none, bridge or host")
        network = cls(mode, _new_loopback_namespace())
        if mode == "bridge":
            try:
                network._start_slirp()
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
        assert self.fd is not None
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        exit_r, exit_w = os.pipe2(os.O_CLOEXEC)
        try:
            self._slirp = subprocess.Popen(
                [
                    binary,
                    "--configure",
                    "--mtu=65520",
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
