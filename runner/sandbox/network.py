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
from runner.sandbox.nsholder import namespace_fd
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
    """A namespace with loopback up, held by a descriptor of ours."""

    def setup() -> None:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        syscalls.loopback_up()

    return namespace_fd("net", setup, "create a network namespace")
