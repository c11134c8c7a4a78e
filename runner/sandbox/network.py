"""Network namespaces made once per job and joined by its steps and services.

Creating and destroying a network namespace costs far more than a container, so a job makes one and
every container of the job `setns`es into it. The namespace is held by an open file descriptor of
this process, not by a bind mount: when the runner exits, even by SIGKILL, the descriptor closes and
the kernel frees the namespace, so nothing can leak.

Modes: `none` (a namespace with only loopback up), `host` (the host's network: no namespace).
`bridge` (outbound only, never the host's loopback) is a seam for the hardening issue.
"""

from __future__ import annotations

import os

from runner.sandbox import syscalls
from runner.sandbox.types import SandboxError

MODES = ("none", "bridge", "host")


class NetworkNamespace:
    def __init__(self, mode: str, fd: int | None) -> None:
        self.mode = mode
        self.fd = fd

    @classmethod
    def create(cls, mode: str = "none") -> NetworkNamespace:
        if mode == "host":
            return cls("host", None)
        if mode == "bridge":
            raise SandboxError(
                "network 'bridge' is not available yet in this version; use 'none' (loopback only) or 'host'"
            )
        if mode != "none":
            raise SandboxError(f"unknown network mode {mode!r}: use none, bridge or host")
        return cls("none", _new_loopback_namespace())

    @property
    def shared(self) -> bool:
        """True when containers must join `fd` rather than make their own namespace."""
        return self.fd is not None

    def close(self) -> None:
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
    """Fork a child that makes a namespace with loopback up; keep a descriptor of it; let the child go."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # child: no Python-level cleanup, only syscalls
        code = 0
        try:
            os.close(ready_r)
            os.close(go_w)
            syscalls.unshare(syscalls.CLONE_NEWNET)
            syscalls.loopback_up()
            os.write(ready_w, b"k")
            os.read(go_r, 1)
        except BaseException as exc:
            try:
                os.write(ready_w, b"e" + str(exc).encode()[:500])
            except BaseException:
                pass
            code = 1
        os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        answer = os.read(ready_r, 600)
        if answer != b"k":
            raise SandboxError(f"cannot create a network namespace: {answer[1:].decode(errors='replace')}")
        return os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(go_w)
        os.waitpid(pid, 0)
