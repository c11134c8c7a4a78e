"""The container lifecycle: fork into fresh namespaces and a cgroup, run, stream output, account, tear down.

Process layout (no helper binary, no exec before the user's command):

    caller thread: unshare(CLONE_NEWPID) for its own children only, fork, setns back to its pid namespace
        └──▶ pid 1 of the new pid namespace: joins its cgroup, enters its own copy of the rootfs's
             template mount namespace (overlays, /dev and /sys are mounted there once per job), joins
             the job's network, mounts /proc and the workspace, pivot_root, joins the job's user
             namespace (the last namespace: every other one stays the host root's, see userns.py),
             drops capabilities, execs

The container's pid 1 dies with the calling thread (parent-death signal), and when it exits the
kernel kills everything else in its pid namespace. Setup errors travel back on a close-on-exec pipe,
so the caller knows the command started (or exactly which syscall failed) before `spawn` returns.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import socket
import struct
import termios
import threading
import time
import uuid
from typing import Any

from runner.sandbox import cgroups, mounts, records, seccomp, syscalls, template, userns
from runner.sandbox.capabilities import DEFAULT_MASK
from runner.sandbox.network import NetworkNamespace
from runner.sandbox.rootfs import Rootfs
from runner.sandbox.types import ContainerSpec, IdMap, OutputCallback, Result, SandboxError
from runner.settings import Paths

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_LINE = 64 * 1024
_ERR_SETUP = b"s"
_ERR_EXEC = b"x"
_CAP_LAST = syscalls.cap_last_cap()
_privileges_prepared = False  # the zygote drops the bounding set and sets no_new_privs once, for all


def prepare_privileges_once() -> None:
    """For a process that only ever forks containers: what every container drops, dropped up front."""
    global _privileges_prepared
    syscalls.drop_bounding_set(DEFAULT_MASK, _CAP_LAST)
    syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
    _privileges_prepared = True


class Container:
    """A running container. `wait()` pumps its output and returns its Result; `kill()` ends it."""

    def __init__(
        self,
        spec: ContainerSpec,
        pid: int,
        cgroup: cgroups.Cgroup,
        fds: dict[int, str],
        on_output: OutputCallback | None,
        started: float,
        cleanup: list,
        status_fd: int | None = None,
        pidfd: int | None = None,
    ) -> None:
        # the status pipe: the zygote's report of how pid 1 ended
        self._status_fd = status_fd
        self._pidfd = pidfd  # set when the zygote is the parent: we signal through it, and cannot wait
        self.spec = spec
        self.pid = pid  # the host pid of the container's pid 1
        self.cgroup = cgroup
        self._fds = fds
        self._on_output = on_output
        self._started = started
        self._deadline = started + spec.timeout if spec.timeout else None
        self._cleanup = cleanup
        self._killed_for: str | None = None
        self._lock = threading.Lock()
        self._result: Result | None = None
        self._status: int | None = None
        self.userns: IdMap | None = None  # the user namespace it runs in, if any (see userns.py)

    def kill(self, reason: str = "killed") -> None:
        """Kill the whole process tree: SIGKILL to pid 1 makes the kernel kill its whole pid namespace."""
        with self._lock:
            if self._status is not None:
                return
            if self._killed_for is None:
                self._killed_for = reason
            try:
                if self._pidfd is not None:
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                else:
                    os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self) -> Result:
        if self._result is not None:
            return self._result
        buffers = {fd: b"" for fd in self._fds}
        open_fds = set(self._fds)
        poller = select.poll()
        for fd in open_fds:
            poller.register(fd, select.POLLIN | select.POLLHUP)
        while open_fds:
            timeout_ms = None
            if self._deadline is not None and self._killed_for is None:
                timeout_ms = max(0, int((self._deadline - time.monotonic()) * 1000) + 1)
            events = poller.poll(timeout_ms)
            if self._deadline is not None and self._killed_for is None and time.monotonic() >= self._deadline:
                self.kill(
                    "timeout"
                )  # checked on every wake-up: a command that never stops printing times out too
            for fd, _ in events:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO on a pty whose last writer is gone
                    chunk = b""
                if not chunk:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    if buffers[fd]:
                        self._emit(fd, buffers[fd])
                        buffers[fd] = b""
                    continue
                data = buffers[fd] + chunk
                *lines, rest = data.split(b"\n")
                for line in lines:
                    self._emit(fd, line)
                while len(rest) > MAX_LINE:
                    self._emit(fd, rest[:MAX_LINE])
                    rest = rest[MAX_LINE:]
                buffers[fd] = rest
        status = int(signal.SIGKILL)  # what we report if no one can tell us (the zygote died)
        if self._pidfd is None:
            _, status = os.waitpid(self.pid, 0)
        if self._status_fd is not None:
            relayed = _read_exact(self._status_fd, 4)
            os.close(self._status_fd)
            if len(relayed) == 4:
                (status,) = struct.unpack("i", relayed)
        if self._pidfd is not None:
            os.close(self._pidfd)
        ended = time.monotonic()
        with self._lock:
            self._status = status
        result = self._finish(status, ended)
        self._result = result
        return result

    def _emit(self, fd: int, line: bytes) -> None:
        if self._on_output is not None:
            if line.endswith(b"\r"):
                line = line[:-1]
            self._on_output(self._fds[fd], line)  # type: ignore[arg-type]

    def _finish(self, status: int, ended: float) -> Result:
        stats = self.cgroup.stats()
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + (sig or 0)
        if self._killed_for == "timeout":
            reason, code = "timeout", 124
        elif stats.oom_kills > 0:
            reason = "oom"
            if sig is None and code == 0:
                code = 137
        elif self._killed_for is not None or sig is not None:
            reason = "killed"
        else:
            reason = "exited"
        self._teardown()
        return Result(
            exit_code=code,
            reason=reason,  # type: ignore[arg-type]
            signal=sig,
            wall_time=ended - self._started,
            cpu_time=stats.cpu_time,
            peak_memory=stats.peak_memory,
            pids_limited=stats.pids_limited > 0,
        )

    def _teardown(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.cgroup.remove()
        finally:
            for action in self._cleanup:
                action()


def _read_exact(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            break
        data += chunk
    return data


_zygote: Any = None
_zygote_pid = 0  # the process that started it: a forked child (a Celery pool process) needs its own
_zygote_env_checked = 0


def use_zygote(enabled: bool = True) -> None:
    """Fork containers from a small helper process from now on (see zygote.py): for big callers."""
    global _zygote, _zygote_pid
    if enabled and (_zygote is None or _zygote_pid != os.getpid() or _zygote.process.poll() is not None):
        from runner.sandbox.zygote import ZygoteClient

        _zygote, _zygote_pid = ZygoteClient(), os.getpid()
    elif not enabled and _zygote is not None:
        if _zygote_pid == os.getpid():
            _zygote.close()
        _zygote = None


def _current_zygote() -> Any:
    """The zygote to use: RUNNER_ZYGOTE=1 (set by `runner worker`) starts one per process, lazily."""
    global _zygote_env_checked
    if _zygote_env_checked != os.getpid():
        _zygote_env_checked = os.getpid()
        if os.environ.get("RUNNER_ZYGOTE") == "1" or (_zygote is not None and _zygote_pid != os.getpid()):
            use_zygote(os.environ.get("RUNNER_ZYGOTE") == "1")
    return _zygote


def spawn(
    spec: ContainerSpec,
    *,
    rootfs: Rootfs | None = None,
    network: NetworkNamespace | None = None,
    on_output: OutputCallback | None = None,
    paths: Paths | None = None,
) -> Container:
    """Start `spec` and return once its command has been exec'd; SandboxError if the runner could not."""
    paths = paths or (rootfs.paths if rootfs is not None else Paths.default())
    records.sweep_once(paths)
    if not spec.argv:
        raise SandboxError("no command given")
    if spec.workspace is not None and not spec.workspace.is_dir():
        raise SandboxError(f"workspace {spec.workspace} does not exist or is not a directory")
    for m in spec.mounts:
        if not m.source.exists():
            raise SandboxError(f"mount source {m.source} does not exist")
    if spec.seccomp == "default":
        seccomp.program()  # built once per process (or refused: libseccomp missing) before anything is taken
    cleanup: list = []
    if rootfs is None:
        rootfs = Rootfs.create(paths)
        cleanup.append(rootfs.destroy)
    try:
        plan = mounts.plan_for(rootfs, spec, network.resolv_conf if network is not None else None)
        idmap = userns.resolve(spec.userns, rootfs, [source for source, _, _ in plan.binds])
        if idmap is not None and max(spec.uid, spec.gid) >= idmap.count:
            raise SandboxError(
                f"user {spec.uid}:{spec.gid} is outside the user namespace's {idmap.count} ids"
                " (run it with security: {userns: false})"
            )
        mnt_fd = template.mount_namespace(rootfs, plan, network, idmap)
    except BaseException:
        for action in cleanup:
            action()
        raise
    name = records.cgroup_name(uuid.uuid4().hex[:10])
    try:
        io_devices = _io_devices(spec, rootfs) if spec.limits.io else None
        cgroup = cgroups.driver().create(name, spec.limits, io_devices)
    except BaseException:
        for action in cleanup:
            action()
        raise
    try:
        return _start(spec, plan, mnt_fd, network, cgroup, on_output, cleanup, idmap)
    except BaseException:
        try:
            cgroup.remove()
        finally:
            for action in cleanup:
                action()
        raise


def _io_devices(spec: ContainerSpec, rootfs: Rootfs) -> list[tuple[int, int]]:
    """The block devices the container writes to: its writable layer's (the loop device of a `disk`
    limit) and those of the workspace and writable mounts."""
    from runner.sandbox.limits import devices_for

    devices = [rootfs.disk.dev] if rootfs.disk is not None else devices_for([rootfs.upper_root])
    writable = [m.source for m in spec.mounts if not m.readonly]
    for dev in devices_for([*([spec.workspace] if spec.workspace else []), *writable]):
        if dev not in devices:
            devices.append(dev)
    return devices


def run(
    spec: ContainerSpec,
    *,
    rootfs: Rootfs | None = None,
    network: NetworkNamespace | None = None,
    on_output: OutputCallback | None = None,
    paths: Paths | None = None,
) -> Result:
    return spawn(spec, rootfs=rootfs, network=network, on_output=on_output, paths=paths).wait()


_own_pid_ns: int | None = None


def _fork_into_new_pid_namespace() -> int:
    """fork() whose child is pid 1 of a new pid namespace, without moving this process or its other threads.

    unshare(CLONE_NEWPID) only changes the namespace the calling thread's next children are born in;
    setns() back to our own namespace right after the fork restores that.
    """
    global _own_pid_ns
    if _own_pid_ns is None or _own_pid_ns_pid != os.getpid():
        _reset_pid_ns_fd()
    syscalls.unshare(syscalls.CLONE_NEWPID)
    try:
        return os.fork()
    finally:
        if os.getpid() != 1:
            assert _own_pid_ns is not None
            syscalls.setns(_own_pid_ns, syscalls.CLONE_NEWPID)


_own_pid_ns_pid = 0


def _reset_pid_ns_fd() -> None:
    global _own_pid_ns, _own_pid_ns_pid
    _own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    _own_pid_ns_pid = os.getpid()


def _start(
    spec: ContainerSpec,
    plan: mounts.MountPlan,
    mnt_fd: int,
    network: NetworkNamespace | None,
    cgroup: cgroups.Cgroup,
    on_output: OutputCallback | None,
    cleanup: list,
    idmap: IdMap | None = None,
) -> Container:
    procs_fds = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in cgroup.procs_files]
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    console: socket.socket | None = None
    child_console: socket.socket | None = None
    if spec.pty:  # the container allocates it from its own devpts and sends us the master
        console, child_console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        child_fds: dict[str, int] = {}
        parent_fds: dict[int, str] = {}
    else:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        e_r, e_w = os.pipe2(os.O_CLOEXEC)
        child_fds = {"stdout": out_w, "stderr": e_w}
        parent_fds = {out_r: "stdout", e_r: "stderr"}
    env = dict(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", spec.hostname)
    env.setdefault("HOME", "/root" if spec.uid == 0 else "/")
    zygote = _current_zygote()
    status_r, status_w = os.pipe2(os.O_CLOEXEC) if zygote is not None else (None, None)
    child = _Child(
        spec,
        plan,
        mnt_fd,
        network,
        procs_fds,
        err_w,
        child_fds,
        env,
        child_console.fileno() if child_console is not None else None,
        status_w,
        idmap,
    )
    started = time.monotonic()
    pidfd: int | None = None
    try:
        if zygote is not None:
            try:
                pid, pidfd = zygote.spawn(child, child.export_fds())
            except OSError as exc:
                raise SandboxError(f"the zygote could not start the container: {exc}") from None
        else:
            pid = _fork_into_new_pid_namespace()
            if pid == 0:
                child.run()  # never returns
    finally:
        for fd in (*procs_fds, err_w, *set(child_fds.values())):
            os.close(fd)
        if status_w is not None:
            os.close(status_w)
        if child_console is not None:
            child_console.close()
    error = b""
    while True:
        chunk = os.read(err_r, 4096)
        if not chunk:
            break
        error += chunk
    os.close(err_r)
    if console is not None:
        if error[:1] != _ERR_SETUP:
            _, fds, _, _ = socket.recv_fds(console, 1, 1)
            if fds:
                parent_fds[fds[0]] = "stdout"
        console.close()
    if error[:1] == _ERR_SETUP:
        if pidfd is None:
            os.waitpid(pid, 0)
        else:
            os.close(pidfd)
        for fd in (*parent_fds, *([status_r] if status_r is not None else [])):
            os.close(fd)
        raise SandboxError(error[1:].decode(errors="replace"))
    container = Container(spec, pid, cgroup, parent_fds, on_output, started, cleanup, status_r, pidfd)
    container.userns = idmap
    if error and on_output is not None:  # exec failed: the command's fault (not found...), as a shell says
        on_output("stderr", b"runner: " + error[1:])
    return container


class _Child:
    """What the container's pid 1 does between fork and exec: only syscalls, no threads, no imports.

    It holds plain descriptor numbers (no objects owning them), so that the zygote can receive it
    pickled, with the descriptors themselves passed beside it (`export_fds`/`adopt`).
    """

    def __init__(
        self,
        spec: ContainerSpec,
        plan: mounts.MountPlan,
        mnt_fd: int,
        network: NetworkNamespace | None,
        procs_fds: list[int],
        err_w: int,
        stdio: dict[str, int],
        env: dict[str, str],
        console_fd: int | None,
        status_w: int | None = None,
        idmap: IdMap | None = None,
    ) -> None:
        self.spec = spec
        self.plan = plan
        self.mnt_fd = mnt_fd
        self.own_net = network is None  # a fresh namespace per container, else join net_fd (or the host's)
        self.net_fd = network.fd if network is not None else None
        self.procs_fds = procs_fds
        self.err_w = err_w
        self.stdio = stdio
        self.env = env
        self.console_fd = console_fd
        self.status_w = status_w
        self.idmap = idmap  # join this user namespace (userns_fd) as the last namespace step
        self.userns_fd = userns.userns_fd(idmap) if idmap is not None else None
        # built once per process, here in the caller: the child only installs it (one prctl)
        self.seccomp_filter = seccomp.program() if spec.seccomp == "default" else None

    def export_fds(self) -> list[int]:
        """Replace every descriptor field by its index in the returned list (for SCM_RIGHTS)."""
        fds: list[int] = []

        def index(fd: int) -> int:
            if fd not in fds:
                fds.append(fd)
            return fds.index(fd)

        self.mnt_fd = index(self.mnt_fd)
        self.net_fd = index(self.net_fd) if self.net_fd is not None else None
        self.procs_fds = [index(fd) for fd in self.procs_fds]
        self.err_w = index(self.err_w)
        self.stdio = {name: index(fd) for name, fd in self.stdio.items()}
        self.console_fd = index(self.console_fd) if self.console_fd is not None else None
        self.status_w = index(self.status_w) if self.status_w is not None else None
        self.userns_fd = index(self.userns_fd) if self.userns_fd is not None else None
        return fds

    def adopt(self, fds: list[int]) -> None:
        """The reverse of `export_fds`, in the zygote, with the descriptors it received."""
        self.mnt_fd = fds[self.mnt_fd]
        self.net_fd = fds[self.net_fd] if self.net_fd is not None else None
        self.procs_fds = [fds[i] for i in self.procs_fds]
        self.err_w = fds[self.err_w]
        self.stdio = {name: fds[i] for name, i in self.stdio.items()}
        self.console_fd = fds[self.console_fd] if self.console_fd is not None else None
        self.status_w = fds[self.status_w] if self.status_w is not None else None
        self.userns_fd = fds[self.userns_fd] if self.userns_fd is not None else None

    def _fail(self, kind: bytes, message: str, code: int) -> None:
        try:
            os.write(self.err_w, kind + message.encode(errors="replace")[:4000])
        finally:
            os._exit(code)

    def run(self) -> None:
        spec = self.spec
        try:
            for fd in self.procs_fds:
                os.write(fd, b"0")
            syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
            syscalls.setns(self.mnt_fd, syscalls.CLONE_NEWNS)
            if self.net_fd is not None:
                syscalls.setns(self.net_fd, syscalls.CLONE_NEWNET)
            flags = (
                syscalls.CLONE_NEWNS
                | syscalls.CLONE_NEWUTS
                | syscalls.CLONE_NEWIPC
                | syscalls.CLONE_NEWCGROUP
            )
            if self.own_net:
                flags |= syscalls.CLONE_NEWNET
            syscalls.unshare(flags)
            if self.idmap is not None:  # what perform() creates in the overlay belongs to container root
                userns.act_as_mapped_root(self.idmap)
            mounts.perform(self.plan, userns_fd=self.userns_fd)
            syscalls.sethostname(spec.hostname)
            if self.own_net:
                syscalls.loopback_up()
                if self.idmap is not None:
                    userns.open_low_ports()
            self._stdio()
            try:
                os.chdir(spec.cwd)
            except OSError:
                raise SandboxError(f"working directory {spec.cwd} does not exist in the container") from None
            if self.userns_fd is not None:  # last: every other namespace stays the host root's
                userns.enter(self.userns_fd)
            self._drop_privileges()
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            syscalls.close_range_cloexec(3)
            if self.seccomp_filter is not None:  # last: after no_new_privs and the capability drop
                seccomp.install(self.seccomp_filter)
        except BaseException as exc:
            self._fail(_ERR_SETUP, f"container setup: {exc}", 125)
        try:
            os.execvpe(spec.argv[0], spec.argv, self.env)
        except OSError as exc:
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            reason = "command not found" if code == 127 else exc.strerror
            self._fail(_ERR_EXEC, f"{spec.argv[0]}: {reason}", code)
        except BaseException as exc:
            self._fail(_ERR_SETUP, f"exec {spec.argv[0]}: {exc}", 125)

    def _stdio(self) -> None:
        null = os.open("/dev/null", os.O_RDWR)
        if self.console_fd is not None:
            master, slave = os.openpty()  # from the container's /dev/ptmx, so ttyname() resolves inside
            console = socket.socket(fileno=self.console_fd)
            socket.send_fds(console, [b"p"], [master])
            os.close(master)
            console.close()
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            out = err = slave
            os.dup2(out, 0)
        else:
            os.setsid()  # own session: a terminal's Ctrl-C reaches the runner, which decides what it means
            out, err = self.stdio["stdout"], self.stdio["stderr"]
            os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in {null, out, err}:
            if fd > 2:
                os.close(fd)

    def _drop_privileges(self) -> None:
        spec = self.spec
        if not _privileges_prepared or self.userns_fd is not None:  # joining a user namespace refills it
            syscalls.drop_bounding_set(DEFAULT_MASK, _CAP_LAST)
            syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
        syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
        if spec.gid != 0 or spec.uid != 0:
            os.setgroups([spec.gid])
            os.setgid(spec.gid)
            os.setuid(spec.uid)
        else:
            syscalls.capset(DEFAULT_MASK)
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)  # a change of uid or fsuid cleared it
