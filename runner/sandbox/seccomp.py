"""The container's syscall filter: a default-deny allow-list modelled on Docker's default profile.

The filter is compiled once per process with libseccomp (`libseccomp.so.2`, through ctypes) into a
raw classic-BPF program (`program()`), which travels to the container's pid 1 as bytes (pickled to
the zygote with the rest of the child) and is installed there with one `prctl(PR_SET_SECCOMP)`
right before `execve` (`install()`): no libseccomp call ever happens after fork.

What a container's syscall gets:
  - allowed: the usual syscalls of programs, compilers, package managers, test runners (ALLOWED),
    and a few only with safe arguments (`clone`/`unshare` without namespace flags, `personality`
    with the values Docker allows, `socket` of any family but AF_VSOCK);
  - EPERM: everything else the kernel knows (the default action), as Docker answers;
  - ENOSYS: `clone3` (so glibc falls back to `clone`, whose flags the filter can see), the syscalls
    Linux itself never implemented on x86_64, and every syscall newer than NEWEST_REVIEWED: a new
    kernel's syscalls are unknown to this list, and programs treat ENOSYS as "an older kernel" and
    fall back (as runc does for its profiles);
  - the process killed with SIGSYS: any syscall of another ABI (i386 `int 0x80`, x32).

Deliberate differences from Docker's default profile (moby `profiles/seccomp/default.json`):
  - i386 and x32 syscalls are not allowed (Docker adds the x86 and x32 architectures with the same
    list): the 32-bit compat entry points have a long record of kernel bugs and CI jobs of this
    project run x86_64 code. A 32-bit binary dies with "Bad system call"; such a job can set
    `security: {seccomp: unconfined}`.
  - No capability-dependent rules: the capability set is fixed (capabilities.py), so syscalls Docker
    allows only with CAP_SYS_ADMIN, CAP_SYS_TIME, CAP_SYS_MODULE... are simply denied.
  - `socket(AF_VSOCK)` answers EAFNOSUPPORT: vsock is not network-namespaced, and in a VM it
    reaches the hypervisor's host whatever `network:` says.
  - `io_uring_*` are denied (as in Docker since 25.0); `modify_ldt` is denied (16-bit code only,
    and a source of kernel bugs); `migrate_pages`/`move_pages` are denied (they act on other
    processes), while a process's own NUMA policy (`mbind`, `set/get_mempolicy`) is allowed.
  - `adjtimex` is denied with the clock setters (Docker allows its read-only use); `syslog`,
    `fanotify_*`, `setns`, `sethostname` and the mount API are denied (they need CAP_SYS_ADMIN,
    CAP_SYSLOG, which containers do not have); `statmount`/`listmount` are allowed: they read the
    caller's own mount namespace, like /proc/self/mountinfo.
  - `ptrace`, `process_vm_readv/writev` and `kcmp` are allowed, as Docker does on kernels from 4.8
    (where ptrace can no longer bypass seccomp): a job may run gdb, strace or a sanitizer on its own
    processes, and the pid namespace leaves nothing else to trace. CAP_SYS_PTRACE is not granted.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import threading
from typing import Literal

from runner.sandbox import syscalls
from runner.sandbox.types import SandboxError

Mode = Literal["default", "unconfined"]
MODES: tuple[Mode, ...] = ("default", "unconfined")


def _names(text: str) -> list[str]:
    return text.split()


# The newest x86_64 syscall this policy was reviewed against (file_setattr, Linux 6.17); any higher
# number answers ENOSYS before the libseccomp program runs.
NEWEST_REVIEWED = 469

ALLOWED: frozenset[str] = frozenset(
    _names(
        """
    read write open close stat fstat lstat newfstatat statx poll ppoll select pselect6 lseek
    pread64 pwrite64 readv writev preadv pwritev preadv2 pwritev2 sendfile splice tee vmsplice
    copy_file_range readahead fadvise64 fallocate truncate ftruncate fsync fdatasync sync syncfs
    sync_file_range flock fcntl ioctl dup dup2 dup3 pipe pipe2 close_range access faccessat
    faccessat2 openat openat2 creat getdents getdents64 getcwd chdir fchdir rename renameat
    renameat2 mkdir mkdirat rmdir link linkat unlink unlinkat symlink symlinkat readlink readlinkat
    chmod fchmod fchmodat fchmodat2 chown fchown lchown fchownat umask utime utimes utimensat
    futimesat mknod mknodat statfs fstatfs chroot cachestat
    setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr
    removexattr lremovexattr fremovexattr setxattrat getxattrat listxattrat removexattrat
    file_getattr file_setattr
    inotify_init inotify_init1 inotify_add_watch inotify_rm_watch
    mmap munmap mprotect mremap msync mincore madvise brk mlock mlock2 munlock mlockall munlockall
    remap_file_pages memfd_create membarrier pkey_mprotect pkey_alloc pkey_free mseal
    process_madvise map_shadow_stack mbind set_mempolicy get_mempolicy set_mempolicy_home_node
    fork vfork execve execveat exit exit_group wait4 waitid kill tkill tgkill getpid gettid getppid
    set_tid_address set_robust_list get_robust_list rseq arch_prctl prctl seccomp
    pidfd_open pidfd_send_signal pidfd_getfd process_mrelease
    ptrace process_vm_readv process_vm_writev kcmp
    getuid geteuid getgid getegid getresuid getresgid getgroups setuid setgid setreuid setregid
    setresuid setresgid setfsuid setfsgid setgroups capget capset
    getpgid setpgid getpgrp getsid setsid getpriority setpriority getrlimit setrlimit prlimit64
    getrusage times sysinfo uname getcpu getrandom
    sched_yield sched_setparam sched_getparam sched_setscheduler sched_getscheduler
    sched_get_priority_max sched_get_priority_min sched_rr_get_interval sched_setaffinity
    sched_getaffinity sched_setattr sched_getattr ioprio_set ioprio_get
    rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait rt_sigqueueinfo
    rt_tgsigqueueinfo rt_sigsuspend sigaltstack pause signalfd signalfd4 restart_syscall
    nanosleep clock_nanosleep clock_gettime clock_getres gettimeofday time alarm getitimer setitimer
    timer_create timer_settime timer_gettime timer_getoverrun timer_delete
    timerfd_create timerfd_settime timerfd_gettime
    futex futex_waitv futex_wake futex_wait futex_requeue set_thread_area get_thread_area
    eventfd eventfd2 epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_pwait2
    io_setup io_destroy io_getevents io_pgetevents io_submit io_cancel
    connect accept accept4 bind listen shutdown getsockname getpeername socketpair setsockopt
    getsockopt sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg
    shmget shmat shmctl shmdt semget semop semctl semtimedop msgget msgsnd msgrcv msgctl
    mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr
    landlock_create_ruleset landlock_add_rule landlock_restrict_self statmount listmount
    """
    )
)

# Allowed only with the arguments `_conditional_rules` checks.
CONDITIONAL: frozenset[str] = frozenset({"clone", "unshare", "personality", "socket"})

# Answer ENOSYS: clone3 (its flags sit in memory the filter cannot read; glibc then uses clone), and
# syscalls x86_64 Linux never implemented.
ENOSYS: frozenset[str] = frozenset(
    _names(
        """
    clone3 create_module get_kernel_syms query_module nfsservctl getpmsg putpmsg afs_syscall tuxcall
    security vserver epoll_ctl_old epoll_wait_old uselib _sysctl
    """
    )
)

# Denied on purpose (EPERM, the default action), by what they would give a container.
DENIED: dict[str, str] = {
    **dict.fromkeys(
        _names(
            "mount umount2 pivot_root open_tree open_tree_attr move_mount fsopen fsconfig fsmount fspick"
            " mount_setattr"
        ),
        "mounts",
    ),
    **dict.fromkeys(_names("setns"), "namespaces"),
    **dict.fromkeys(
        _names("init_module finit_module delete_module kexec_load kexec_file_load"), "kernel code"
    ),
    **dict.fromkeys(_names("settimeofday clock_settime clock_adjtime adjtimex"), "the clock"),
    **dict.fromkeys(_names("keyctl add_key request_key"), "kernel keyrings (not namespaced)"),
    **dict.fromkeys(
        _names("bpf perf_event_open userfaultfd io_uring_setup io_uring_enter io_uring_register"),
        "kernel attack surface",
    ),
    **dict.fromkeys(_names("open_by_handle_at name_to_handle_at lookup_dcookie"), "files by handle"),
    **dict.fromkeys(_names("iopl ioperm modify_ldt"), "hardware and segment access"),
    **dict.fromkeys(
        _names("reboot swapon swapoff acct quotactl quotactl_fd syslog vhangup sethostname setdomainname"),
        "host administration",
    ),
    **dict.fromkeys(_names("migrate_pages move_pages"), "other processes' memory"),
    **dict.fromkeys(_names("fanotify_init fanotify_mark"), "filesystem-wide monitoring"),
    **dict.fromkeys(_names("ustat sysfs"), "obsolete interfaces"),
    **dict.fromkeys(
        _names("memfd_secret lsm_get_self_attr lsm_set_self_attr lsm_list_modules"), "not reviewed yet"
    ),
}

# x86_64 numbers of syscalls newer than what Debian 12's libseccomp (2.5.4) knows by name.
_NEWER_NUMBERS = {
    "cachestat": 451,
    "fchmodat2": 452,
    "map_shadow_stack": 453,
    "futex_wake": 454,
    "futex_wait": 455,
    "futex_requeue": 456,
    "statmount": 457,
    "listmount": 458,
    "lsm_get_self_attr": 459,
    "lsm_set_self_attr": 460,
    "lsm_list_modules": 461,
    "mseal": 462,
    "setxattrat": 463,
    "getxattrat": 464,
    "listxattrat": 465,
    "removexattrat": 466,
    "open_tree_attr": 467,
    "file_getattr": 468,
    "file_setattr": 469,
}

# clone(2)/unshare(2) flags that make namespaces (CLONE_NEWTIME shares its bit with clone's exit signal)
NAMESPACE_FLAGS = 0x7E020000
CLONE_NEWTIME = 0x80
AF_VSOCK = 40
# personality(2): PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query value
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_ACT_ERRNO = 0x00050000
_SCMP_FLTATR_ACT_BADARCH = 2
_SCMP_FLTATR_CTL_NNP = 3
_SCMP_FLTATR_CTL_OPTIMIZE = 8
_SCMP_CMP_NE = 1
_SCMP_CMP_EQ = 4
_SCMP_CMP_MASKED_EQ = 7

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_INSTRUCTION = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k


def errno_action(number: int) -> int:
    return _SCMP_ACT_ERRNO | (number & 0xFFFF)


class SeccompError(SandboxError):
    """The filter could not be built (libseccomp missing or refusing a rule): one line for the user."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_lock = threading.Lock()
_program: bytes | None = None


def program() -> bytes:
    """The default policy as a raw BPF program (struct sock_filter[]), built on first use per process."""
    global _program
    if _program is None:
        with _lock:
            if _program is None:
                _program = _new_syscalls_prefix() + _compile()
    return _program


def install(filter_program: bytes) -> None:
    """Install `filter_program` on the calling thread; needs no_new_privs (or CAP_SYS_ADMIN).

    Runs in the container's pid 1 between fork and exec: ctypes and one prctl, no libseccomp.
    The kernel's part (checking and JIT-compiling ~450 instructions) costs about 0.3 ms.
    """
    count = len(filter_program) // _INSTRUCTION.size
    buffer = ctypes.create_string_buffer(filter_program, len(filter_program))
    fprog = _SockFprog(count, ctypes.addressof(buffer))
    try:
        syscalls.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog))
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, exc.errno)
        raise OSError(exc.errno, f"prctl(PR_SET_SECCOMP): {name} ({os.strerror(exc.errno or 0)})") from None


def _new_syscalls_prefix() -> bytes:
    """BPF run before libseccomp's program: x86_64 syscalls above NEWEST_REVIEWED answer ENOSYS.

    Jumps are relative, so prefixing the program leaves its own jumps intact.
    """
    ld_w_abs, jeq, jge, jgt, ret = 0x20, 0x15, 0x35, 0x25, 0x06
    code = [
        (ld_w_abs, 0, 0, 4),  # A = seccomp_data.arch
        (jeq, 0, 4, AUDIT_ARCH_X86_64),  # other ABIs: libseccomp's program decides
        (ld_w_abs, 0, 0, 0),  # A = seccomp_data.nr
        (jge, 2, 0, X32_SYSCALL_BIT),  # x32: libseccomp's program decides
        (jgt, 0, 1, NEWEST_REVIEWED),
        (ret, 0, 0, errno_action(errno.ENOSYS) & 0xFFFFFFFF),
    ]
    return b"".join(_INSTRUCTION.pack(*ins) for ins in code)


def _libseccomp() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        raise SeccompError(
            "seccomp: libseccomp.so.2 is not installed (apt-get install libseccomp2),"
            " or run the job with `security: {seccomp: unconfined}`"
        ) from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def syscall_number(name: str, lib: ctypes.CDLL | None = None) -> int:
    """The x86_64 number of `name`, from libseccomp or (for syscalls newer than it) our own table."""
    number = (lib or _libseccomp()).seccomp_syscall_resolve_name(name.encode())
    if number < 0:
        number = _NEWER_NUMBERS.get(name, -1)
    if number < 0:
        raise SeccompError(f"seccomp: libseccomp does not know the syscall '{name}'")
    return int(number)


def known_syscalls() -> dict[str, int]:
    """Every x86_64 syscall up to NEWEST_REVIEWED, by name: libseccomp's names, then our table."""
    lib = _libseccomp()
    lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p  # malloc'd: freed below
    lib.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
    free = ctypes.CDLL(None).free
    free.argtypes = [ctypes.c_void_p]
    names = dict(_NEWER_NUMBERS)
    for number in range(NEWEST_REVIEWED + 1):
        pointer = lib.seccomp_syscall_resolve_num_arch(0, number)  # 0: the native architecture
        if pointer:
            names[ctypes.string_at(pointer).decode()] = number
            free(pointer)
    return names


def _conditional_rules() -> list[tuple[int, str, list[tuple[int, int, int, int]]]]:
    """(action, syscall, [(arg, op, a, b)]): every comparison of one rule must hold."""
    rules: list[tuple[int, str, list[tuple[int, int, int, int]]]] = [
        (SCMP_ACT_ALLOW, "clone", [(0, _SCMP_CMP_MASKED_EQ, NAMESPACE_FLAGS, 0)]),
        (SCMP_ACT_ALLOW, "unshare", [(0, _SCMP_CMP_MASKED_EQ, NAMESPACE_FLAGS | CLONE_NEWTIME, 0)]),
        (SCMP_ACT_ALLOW, "socket", [(0, _SCMP_CMP_NE, AF_VSOCK, 0)]),
        (errno_action(errno.EAFNOSUPPORT), "socket", [(0, _SCMP_CMP_EQ, AF_VSOCK, 0)]),
    ]
    rules += [(SCMP_ACT_ALLOW, "personality", [(0, _SCMP_CMP_EQ, value, 0)]) for value in PERSONALITIES]
    return rules


def _compile() -> bytes:
    lib = _libseccomp()
    ctx = lib.seccomp_init(errno_action(errno.EPERM))
    if not ctx:
        raise SeccompError("seccomp: seccomp_init failed (out of memory?)")
    try:

        def check(result: int, what: str) -> None:
            if result < 0:
                raise SeccompError(f"seccomp: {what}: {os.strerror(-result)}")

        check(lib.seccomp_attr_set(ctx, _SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "bad-arch action")
        check(lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_NNP, 0), "no_new_privs attribute")
        lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_OPTIMIZE, 2)  # a binary tree (libseccomp 2.5+)
        for name in sorted(ALLOWED):
            check(lib.seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, syscall_number(name, lib), 0, None), name)
        for name in sorted(ENOSYS):
            number = syscall_number(name, lib)
            check(lib.seccomp_rule_add_array(ctx, errno_action(errno.ENOSYS), number, 0, None), name)
        for action, name, comparisons in _conditional_rules():
            args = (_ArgCmp * len(comparisons))(*(_ArgCmp(*c) for c in comparisons))
            number = syscall_number(name, lib)
            check(lib.seccomp_rule_add_array(ctx, action, number, len(comparisons), args), name)
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            check(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
