"""Copying a path out of a root filesystem's merged view, for `COPY --from=stage` in image builds.

No tool from the image is needed: a forked child enters its own copy of the rootfs's template mount
namespace, binds the destination directory inside, chroots into the merged root (so every symlink of
the image resolves inside it, never on the host) and copies with Python. Symlinks are copied as
symlinks; files and directories get the requested owner.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from runner.sandbox import mounts, syscalls, template
from runner.sandbox.rootfs import Rootfs
from runner.sandbox.types import ContainerSpec, SandboxError

_OUT = "/.runner-copy-out"


def copy_out(
    rootfs: Rootfs, source: str, dest_root: Path, dest: str, owner: tuple[int, int] = (0, 0)
) -> None:
    """Copy container path `source` to `dest_root/dest` with COPY semantics (a directory's contents)."""
    plan = mounts.plan_for(rootfs, ContainerSpec(argv=["true"]))
    mnt_fd = template.mount_namespace(rootfs, plan, None)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(err_r)
            syscalls.setns(mnt_fd, syscalls.CLONE_NEWNS)
            syscalls.unshare(syscalls.CLONE_NEWNS)
            inside = os.path.join(plan.root, _OUT.lstrip("/"))
            os.makedirs(inside, exist_ok=True)
            syscalls.bind(str(dest_root), inside)
            os.chroot(plan.root)
            os.chdir("/")
            _copy(source, dest, owner)
        except BaseException as exc:
            os.write(err_w, str(exc).encode(errors="replace")[:2000])
            code = 1
        os._exit(code)
    os.close(err_w)
    error = os.read(err_r, 2100)
    os.close(err_r)
    os.waitpid(pid, 0)
    if error:
        raise SandboxError(f"COPY --from {source}: {error.decode(errors='replace')}")


def _copy(source: str, dest: str, owner: tuple[int, int]) -> None:
    if not os.path.lexists(source):
        raise FileNotFoundError(f"{source} does not exist in the source image")
    src_is_dir = os.path.isdir(source)
    target = os.path.join(_OUT, dest.lstrip("/"))
    if src_is_dir:
        os.makedirs(target, exist_ok=True)
        for dirpath, dirnames, filenames in os.walk(source):
            rel = os.path.relpath(dirpath, source)
            for name in sorted(dirnames) + sorted(filenames):
                _entry(os.path.join(dirpath, name), os.path.normpath(os.path.join(target, rel, name)), owner)
    else:
        out = os.path.join(target, os.path.basename(source)) if dest.endswith("/") else target
        os.makedirs(os.path.dirname(out), exist_ok=True)
        _entry(source, out, owner)


def _entry(src: str, out: str, owner: tuple[int, int]) -> None:
    st = os.lstat(src)
    if stat.S_ISLNK(st.st_mode):
        if os.path.lexists(out):
            os.unlink(out)
        os.symlink(os.readlink(src), out)
    elif stat.S_ISDIR(st.st_mode):
        os.makedirs(out, exist_ok=True)
        os.chmod(out, stat.S_IMODE(st.st_mode))
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, out, follow_symlinks=False)
        os.chmod(out, stat.S_IMODE(st.st_mode))
    else:
        return
    os.lchown(out, owner[0], owner[1])
