"""The seccomp policy as data and as the BPF program it compiles to, run here by a small interpreter.

No kernel needed: the program libseccomp exports is evaluated for chosen (arch, syscall, args), so
every rule is checked exactly as the kernel would apply it. tests/sandbox/test_seccomp_kernel.py
checks the same in real containers.
"""

from __future__ import annotations

import errno
import struct

import pytest

from runner.sandbox import seccomp

I386 = 0x40000003
ALLOW = seccomp.SCMP_ACT_ALLOW
KILL = seccomp.SCMP_ACT_KILL_PROCESS
EPERM = seccomp.errno_action(errno.EPERM)
ENOSYS = seccomp.errno_action(errno.ENOSYS)


def evaluate(
    program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = seccomp.AUDIT_ARCH_X86_64
) -> int:
    """Run a classic-BPF seccomp program over one seccomp_data; the returned action."""
    padded = (*args, *([0] * (6 - len(args))))
    data = struct.pack("<IIQ6Q", nr & 0xFFFFFFFF, arch, 0, *(a & 0xFFFFFFFFFFFFFFFF for a in padded))
    code = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        op, jt, jf, k = code[pc]
        pc += 1
        cls = op & 0x07
        if op == 0x20:  # ld w abs
            (a,) = struct.unpack_from("<I", data, k)
        elif op == 0x60:  # ld mem
            a = mem[k]
        elif op == 0x02:  # st
            mem[k] = a
        elif op == 0x61:  # ldx mem
            x = mem[k]
        elif op == 0x03:  # stx
            mem[k] = x
        elif op == 0x07:  # tax
            x = a
        elif op == 0x87:  # txa
            a = x
        elif cls == 0x04:  # alu k/x
            operand = k if not op & 0x08 else x
            fn = {
                0x00: a + operand,
                0x10: a - operand,
                0x50: a & operand,
                0x40: a | operand,
                0x60: a << operand,
                0x70: a >> operand,
                0xA0: a ^ operand,
            }[op & 0xF0]
            a = fn & 0xFFFFFFFF
        elif cls == 0x05:  # jmp
            kind = op & 0xF0
            operand = k if not op & 0x08 else x
            if kind == 0x00:
                pc += k
                continue
            taken = {0x10: a == operand, 0x20: a > operand, 0x30: a >= operand, 0x40: bool(a & operand)}[kind]
            pc += jt if taken else jf
        elif op == 0x06:  # ret k
            return k
        elif op == 0x16:  # ret a
            return a
        else:
            raise AssertionError(f"opcode {op:#x} not handled by the test's interpreter")


@pytest.fixture(scope="module")
def program() -> bytes:
    return seccomp.program()


@pytest.fixture(scope="module")
def numbers() -> dict[str, int]:
    return seccomp.known_syscalls()


def act(program: bytes, numbers: dict[str, int], name: str, *args: int) -> int:
    return evaluate(program, numbers[name], args)


def test_every_known_syscall_is_classified_once(numbers):
    groups = [seccomp.ALLOWED, seccomp.CONDITIONAL, seccomp.ENOSYS, frozenset(seccomp.DENIED)]
    classified = [name for group in groups for name in group]
    assert len(classified) == len(set(classified)), "a syscall is in two groups"
    assert set(numbers) == set(classified)
    assert max(numbers.values()) == seccomp.NEWEST_REVIEWED


def test_issue_7_syscalls_are_denied(program, numbers):
    dangerous = seccomp._names("""
        keyctl add_key request_key bpf perf_event_open userfaultfd kexec_load kexec_file_load
        open_by_handle_at name_to_handle_at init_module finit_module delete_module mount umount2 pivot_root
        fsopen fsmount move_mount open_tree reboot swapon swapoff settimeofday clock_settime clock_adjtime
        adjtimex iopl ioperm acct quotactl lookup_dcookie setns io_uring_setup""")
    for name in dangerous:
        assert name not in seccomp.ALLOWED
        assert act(program, numbers, name) == EPERM, name


def test_everyday_syscalls_are_allowed(program, numbers):
    everyday = ("read", "openat", "execve", "fork", "futex", "mmap", "statx", "ptrace", "chroot", "fchmodat2")
    for name in everyday:
        assert act(program, numbers, name) == ALLOW, name


def test_clone_and_unshare_without_namespaces(program, numbers):
    thread = 0x3D0F00  # glibc's pthread_create flags
    assert act(program, numbers, "clone", thread) == ALLOW
    assert act(program, numbers, "clone", 0x01200011) == ALLOW  # fork(): CHILD_SETTID|CHILD_CLEARTID|SIGCHLD
    for flag in (0x10000000, 0x20000000, 0x40000000, 0x00020000, 0x02000000, 0x04000000, 0x08000000):
        assert act(program, numbers, "clone", 0x11 | flag) == EPERM, hex(flag)
        assert act(program, numbers, "unshare", flag) == EPERM, hex(flag)
    assert act(program, numbers, "unshare", 0x80) == EPERM  # CLONE_NEWTIME
    assert act(program, numbers, "unshare", 0x400) == ALLOW  # CLONE_FILES
    high = 1 << 32  # a flag hidden in the upper half of the 64-bit register is not ignored
    assert act(program, numbers, "clone", high | 0x10000000) == EPERM


def test_clone3_and_newer_syscalls_answer_enosys(program, numbers):
    assert act(program, numbers, "clone3") == ENOSYS
    assert evaluate(program, seccomp.NEWEST_REVIEWED + 1) == ENOSYS
    assert evaluate(program, 1000) == ENOSYS
    assert act(program, numbers, "create_module") == ENOSYS  # never implemented on x86_64


def test_other_abis_are_killed(program, numbers):
    assert evaluate(program, 20, arch=I386) == KILL  # i386 getpid through int 0x80
    assert evaluate(program, seccomp.X32_SYSCALL_BIT | numbers["getpid"]) == KILL
    assert evaluate(program, seccomp.X32_SYSCALL_BIT | 1000) == KILL


def test_personality_only_safe_values(program, numbers):
    for value in seccomp.PERSONALITIES:
        assert act(program, numbers, "personality", value) == ALLOW, hex(value)
    assert act(program, numbers, "personality", 0x0040000) == EPERM  # ADDR_NO_RANDOMIZE
    assert act(program, numbers, "personality", 0x0400000) == EPERM  # READ_IMPLIES_EXEC


def test_vsock_is_not_a_supported_family(program, numbers):
    assert act(program, numbers, "socket", 2, 1) == ALLOW  # AF_INET
    assert act(program, numbers, "socket", 16, 3) == ALLOW  # AF_NETLINK
    assert act(program, numbers, "socket", seccomp.AF_VSOCK, 1) == seccomp.errno_action(errno.EAFNOSUPPORT)


def test_program_is_built_once_per_process():
    assert seccomp.program() is seccomp.program()


def test_a_missing_libseccomp_is_one_line_naming_the_fix(monkeypatch):
    real = seccomp.ctypes.CDLL

    def cdll(name, *args, **kwargs):
        if name == "libseccomp.so.2":
            raise OSError("libseccomp.so.2: cannot open shared object file")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(seccomp, "_program", None)
    monkeypatch.setattr(seccomp.ctypes, "CDLL", cdll)
    with pytest.raises(seccomp.SeccompError) as caught:
        seccomp.program()
    message = str(caught.value)
    assert "\n" not in message
    assert "apt-get install libseccomp2" in message and "security: {seccomp: unconfined}" in message
