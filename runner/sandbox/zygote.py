"""The zygote: a small, fresh interpreter that forks containers on behalf of a big process.

fork() copies the caller's page tables and exec() tears the copy down again, so a container costs
more the bigger the process asking for it: about 1 ms more at 40 MB than at 13 MB here, twice per
container. A CLI full of pydantic, jinja2 and rich, or a Celery worker, is such a process. The
zygote is started once (`python -m runner.sandbox.zygote`), imports only the sandbox, and for each
request receives the container's descriptors over a SOCK_SEQPACKET socket (SCM_RIGHTS), forks the
very same `_Child` the caller would have forked, answers with a pidfd, and later writes the child's
wait status to the container's status pipe. It exits when the caller's end of the socket closes,
and its containers die with it (parent-death signals), exactly as they die with a caller.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

MAX_FDS = 32
MAX_MESSAGE = 1 << 20


class ZygoteClient:
    """The caller's side: starts the zygote and sends it one request at a time (thread-safe)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runner.sandbox.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        ready = self.sock.recv(16)
        if ready != b"ready":
            raise OSError("the zygote process did not start")

    def spawn(self, child: Any, fds: list[int]) -> tuple[int, int]:
        """Fork `child` (a picklable `_Child` whose fd fields are indexes into `fds`); (pid, pidfd)."""
        message = pickle.dumps(child)
        with self.lock:
            socket.send_fds(self.sock, [message], fds)
            data, got, _, _ = socket.recv_fds(self.sock, 64, 1)
        if not data.startswith(b"ok"):
            raise OSError(data[2:].decode(errors="replace") or "the zygote process died")
        (pid,) = struct.unpack("i", data[2:6])
        return pid, got[0]

    def close(self) -> None:
        self.sock.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def serve(fd: int) -> None:
    """The zygote's loop: fork requested containers, reap them, report their wait status."""
    from runner.sandbox import container

    sock = socket.socket(fileno=fd)
    container.prepare_privileges_once()
    status_fds: dict[int, int] = {}  # pid -> the status pipe to report it on
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides what Ctrl-C means
    sock.send(b"ready")
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        for ready_fd, _ in poller.poll():
            if ready_fd == wake_r:
                while True:
                    try:
                        os.read(wake_r, 512)
                    except BlockingIOError:
                        break
                _reap(status_fds)
                continue
            try:
                message, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
            except OSError:
                message = b""
            if not message:  # the caller is gone: so are we, and our containers with us
                os._exit(0)
            _spawn(sock, message, fds, status_fds, container)


def _spawn(
    sock: socket.socket, message: bytes, fds: list[int], status_fds: dict[int, int], container: Any
) -> None:
    try:
        child = pickle.loads(message)
        child.adopt(fds)
        pid = container._fork_into_new_pid_namespace()
        if pid == 0:
            child.run()  # never returns
        status_fds[pid] = os.dup(child.status_w)
        pidfd = os.pidfd_open(pid)
        try:
            socket.send_fds(sock, [b"ok" + struct.pack("i", pid)], [pidfd])
        finally:
            os.close(pidfd)
    except Exception as exc:  # a request we could not serve: the caller raises SandboxError
        sock.send(b"no" + str(exc).encode(errors="replace")[:1000])
    finally:
        for fd in fds:
            os.close(fd)
    _reap(status_fds)


def _reap(status_fds: dict[int, int]) -> None:
    while status_fds:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = status_fds.pop(pid, None)
        if fd is not None:
            try:
                os.write(fd, struct.pack("i", status))
            except OSError:  # the caller already has its answer (the user-namespace relay's) or is gone
                pass
            finally:
                os.close(fd)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
