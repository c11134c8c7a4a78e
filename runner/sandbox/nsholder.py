"""Keeping a namespace by file descriptor: a short-lived child makes it, the caller opens it, the child goes.

A namespace lives as long as something refers to it. An open `/proc/<pid>/ns/<kind>` descriptor in the
runner is such a reference, and unlike a bind mount it cannot outlive the runner: when the runner
exits, even by SIGKILL, the kernel frees the namespace.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from runner.sandbox.types import SandboxError


def namespace_fd(
    kind: str, setup: Callable[[], None], what: str, before_open: Callable[[int], None] | None = None
) -> int:
    """Fork a child that runs `setup` (which unshares and prepares the namespace) and return an fd to it.

    `before_open(pid)` runs here, once the child is ready (a user namespace's id maps are written by
    its parent)."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: only syscalls, then _exit without Python-level cleanup
        code = 0
        try:
            os.close(ready_r)
            os.close(go_w)
            setup()
            os.write(ready_w, b"k")
            os.read(go_r, 1)  # a byte, not EOF: helpers forked by other threads may hold our pipe's ends
        except BaseException as exc:
            try:
                os.write(ready_w, b"e" + str(exc).encode(errors="replace")[:2000])
            except BaseException:
                pass
            code = 1
        os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        answer = os.read(ready_r, 2100)
        if answer != b"k":
            detail = answer[1:].decode(errors="replace") or "the helper process died"
            raise SandboxError(f"cannot {what}: {detail}")
        if before_open is not None:
            before_open(pid)
        return os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        try:
            os.write(go_w, b"g")
        except OSError:  # it died already
            pass
        os.close(ready_r)
        os.close(go_w)
        os.waitpid(pid, 0)
