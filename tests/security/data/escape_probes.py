"""Escape attempts run as root inside a job's container; `python3 escape_probes.py NAME`.

Each probe tries one way out and prints `blocked: NAME: <how it failed>` and exits 0 when every
attempt failed, or prints `ESCAPED: NAME: <what worked>` and exits 1. The test reads both the
output and the host. Inputs come from the environment (CANARY_PATHS, HOST_DEV, HOST_PID, ...);
the canary's content is never given to the job.
"""

import ctypes
import errno
import os
import socket
import stat
import struct
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
U = ctypes.c_ulong
found: list[str] = []  # what worked
refused: list[str] = []  # how each attempt failed


def err() -> str:
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def attempt(what, fn):
    try:
        result = fn()
    except OSError as exc:
        refused.append(f"{what}: {errno.errorcode.get(exc.errno or 0, exc)}")
        return
    if result:
        found.append(f"{what}: {result}")
    else:
        refused.append(f"{what}: nothing")


def write_existing(path, data):
    """Write to a file that must already exist: open without O_CREAT (a new file proves nothing)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def canaries():
    return [p for p in os.environ.get("CANARY_PATHS", "").split(":") if p]


def read_any(paths):
    """The first canary path readable from here (the canary is never in the container's own tree)."""
    for path in paths:
        try:
            with open(path, "rb") as f:
                return f"read {path}: {f.read(64)!r}"
        except OSError:
            continue
    return None


def chroot():
    os.makedirs("/tmp/jail", exist_ok=True)
    fd = os.open("/", os.O_RDONLY)
    os.chroot("/tmp/jail")
    os.fchdir(fd)  # the classic: a directory fd from outside the new root
    for _ in range(64):
        os.chdir("..")
    os.chroot(".")
    return read_any(canaries())


def proc_roots():
    paths = []
    for root in ("/proc/self/root", "/proc/1/root", "/proc/1/cwd"):
        paths += [root + p for p in canaries()]
    return read_any(paths)


def proc1():
    with open("/proc/1/cmdline", "rb") as f:
        ours = f.read()
    if ours == os.environ["HOST_INIT"].encode():
        return f"/proc/1 is the host's init: {ours!r}"
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    if len(pids) > 30:
        return f"{len(pids)} processes visible"
    with open("/proc/1/environ", "rb") as f:
        environ = f.read()
    if b"RUNNER_HOME=" in environ or b"ESCAPE_TEST_MARKER" in environ:
        return "the runner's environment in /proc/1/environ"
    return None


def mknod():
    major, minor = (int(x) for x in os.environ["HOST_DEV"].split(":"))
    os.mknod("/tmp/disk", stat.S_IFBLK | 0o600, os.makedev(major, minor))
    with open("/tmp/disk", "rb") as f:
        return f"read {len(f.read(512))} bytes of the host disk"


def dev_nodes():
    found_nodes = []
    for name in os.listdir("/dev"):
        mode = os.lstat(f"/dev/{name}").st_mode
        if stat.S_ISBLK(mode):
            found_nodes.append(name)
    for name in ("/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/sda", "/dev/vda"):
        try:
            os.close(os.open(name, os.O_RDONLY))
            found_nodes.append(name)
        except OSError:
            pass
    return ", ".join(found_nodes) or None


def sys_write():
    for path in (
        "/sys/kernel/uevent_helper",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/kernel/profiling",
    ):
        try:
            write_existing(path, b"x")
            return f"wrote {path}"
        except OSError as exc:
            refused.append(f"{path}: {errno.errorcode.get(exc.errno or 0)}")
    return None


def proc_sys_write():
    for path in ("/proc/sys/kernel/hostname", "/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches"):
        try:
            write_existing(path, b"escaped")
            return f"wrote {path}"
        except OSError as exc:
            refused.append(f"{path}: {errno.errorcode.get(exc.errno or 0)}")
    return None


def sysrq():
    write_existing("/proc/sysrq-trigger", b"h")  # help: harmless, but must not reach the kernel
    return "wrote /proc/sysrq-trigger"


def modules():
    results = []
    if libc.syscall(175, b"\0" * 64, U(64), b"") == 0:  # init_module
        return "init_module succeeded"
    results.append(f"init_module {err()}")
    fd = os.open("/proc/self/exe", os.O_RDONLY)
    if libc.syscall(313, U(fd), b"", U(0)) == 0:  # finit_module
        return "finit_module succeeded"
    results.append(f"finit_module {err()}")
    if libc.syscall(176, b"ext4", U(0)) == 0:  # delete_module
        return "delete_module succeeded"
    refused.extend([*results, f"delete_module {err()}"])
    return None


class Timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


def clock():
    later = Timespec(int(time.time()) + 7 * 86400, 0)
    if libc.clock_settime(0, ctypes.byref(later)) == 0:
        return "clock_settime succeeded"
    refused.append(f"clock_settime {err()}")
    if libc.settimeofday(ctypes.byref(later), None) == 0:
        return "settimeofday succeeded"
    refused.append(f"settimeofday {err()}")
    buf = ctypes.create_string_buffer(208)
    struct.pack_into("I", buf, 0, 0x0001)  # ADJ_OFFSET
    if libc.adjtimex(buf) >= 0 and ctypes.get_errno() == 0:
        return "adjtimex succeeded"
    return None


def loopback():
    port = int(os.environ["HOST_PORT"])
    gateways = ["127.0.0.1", "10.0.2.2", "10.0.2.3"]
    with open("/proc/net/route") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000":
                gateways.append(socket.inet_ntoa(struct.pack("<I", int(fields[2], 16))))
    for host in gateways:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.settimeout(2)
                banner = s.recv(64)
                if banner:
                    return f"connected to the host's server through {host}: {banner!r}"
        except OSError as exc:
            refused.append(f"{host}:{port} {exc.__class__.__name__}")
    return None


def by_handle():
    handle = bytes.fromhex(os.environ["CANARY_HANDLE"])
    htype = int(os.environ["CANARY_HANDLE_TYPE"])
    buf = ctypes.create_string_buffer(struct.pack("II", len(handle), htype) + handle)
    for mount_point in ("/", "/workspace", "/etc"):
        mfd = os.open(mount_point, os.O_RDONLY)
        fd = libc.syscall(304, U(mfd), buf, U(os.O_RDONLY))  # open_by_handle_at
        if fd >= 0:
            return f"opened the canary by its handle: {os.read(fd, 64)!r}"
        refused.append(f"open_by_handle_at({mount_point}) {err()}")
    return None


def ptrace():
    pid = int(os.environ["HOST_PID"])
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"pytest" in f.read():
                return f"the host's test process {pid} is visible"
    except OSError as exc:
        refused.append(f"kill({pid}, 0) {errno.errorcode.get(exc.errno or 0)}")
    if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
        return f"attached to host pid {pid}"
    refused.append(f"ptrace(ATTACH, {pid}) {err()}")
    local = struct.pack("PL", ctypes.addressof(ctypes.create_string_buffer(8)), 8)
    if libc.process_vm_readv(pid, local, 1, local, 1, 0) >= 0:
        return f"read host pid {pid}'s memory"
    refused.append(f"process_vm_readv({pid}) {err()}")
    return None


def mounts():
    MS_REMOUNT, MS_BIND = 32, 4096
    tries = [
        (None, b"/", None, MS_REMOUNT, None),
        (None, b"/", None, MS_REMOUNT | MS_BIND, None),
        (b"none", b"/tmp", b"tmpfs", 0, None),
        (b"proc", b"/tmp", b"proc", 0, None),
        (b"/", b"/tmp", None, MS_BIND, None),
        (None, b"/sys", None, MS_REMOUNT | MS_BIND, None),
    ]
    for source, target, fstype, flags, data in tries:
        if libc.mount(source, target, fstype, U(flags), data) == 0:
            return f"mount({source}, {target}, {fstype}, {flags:#x}) succeeded"
        refused.append(f"mount({target.decode()}, {flags:#x}) {err()}")
    return None


def cgroups():
    written = []
    for root, _dirs, files in os.walk("/sys/fs/cgroup"):
        for name in files:
            if name in ("release_agent", "notify_on_release", "cgroup.procs", "memory.limit_in_bytes"):
                path = os.path.join(root, name)
                try:
                    write_existing(path, b"/escape" if name == "release_agent" else str(os.getpid()).encode())
                    written.append(path)
                except OSError as exc:
                    refused.append(f"{path}: {errno.errorcode.get(exc.errno or 0)}")
    return ", ".join(written) or None


def userns():
    if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER
        return "unshare(CLONE_NEWUSER) succeeded"
    refused.append(f"unshare(CLONE_NEWUSER) {err()}")
    if libc.syscall(435, None, U(0)) >= 0:
        return "clone3"
    refused.append(f"clone3 {err()}")
    return None


def kmsg():
    for path in ("/dev/kmsg", "/proc/kmsg"):
        try:
            write_existing(path, b"<0>escape test\n")
            return f"wrote {path}"
        except OSError as exc:
            refused.append(f"{path}: {errno.errorcode.get(exc.errno or 0)}")
    if libc.klogctl(3, ctypes.create_string_buffer(128), 128) >= 0:  # SYSLOG_ACTION_READ_ALL
        return "read the kernel log"
    refused.append(f"syslog {err()}")
    return None


def keys():
    if libc.syscall(250, U(0), U(0xFFFFFFFC), U(0)) >= 0:  # KEYCTL_GET_KEYRING_ID, user keyring
        return "reached the kernel keyring"
    refused.append(f"keyctl {err()}")
    return None


def host_files():
    """The runner's own state and the host's private directories are not in the image."""
    seen = [
        p
        for p in ("/root/.ssh", "/var/lib/runner", os.environ.get("HOST_HOME", "/nonexistent"), "/home")
        if os.path.exists(p) and os.listdir(p)
    ]
    return ", ".join(seen) or read_any(canaries())


PROBES = {
    name: fn
    for name, fn in globals().items()
    if callable(fn)
    and name
    in (
        "chroot",
        "proc_roots",
        "proc1",
        "mknod",
        "dev_nodes",
        "sys_write",
        "proc_sys_write",
        "sysrq",
        "modules",
        "clock",
        "loopback",
        "by_handle",
        "ptrace",
        "mounts",
        "cgroups",
        "userns",
        "kmsg",
        "keys",
        "host_files",
    )
}

if __name__ == "__main__":
    name = sys.argv[1]
    if name == "--list":
        print(" ".join(PROBES))
        sys.exit(0)
    attempt(name, PROBES[name])
    if found:
        print(f"ESCAPED: {name}: {'; '.join(found)}")
        sys.exit(1)
    print(f"blocked: {name}: {'; '.join(refused)}")
