"""A job's root filesystem: read-only image layers under a throwaway upper directory.

The `host` image is a curated view of the host: a skeleton directory (empty /root, /home, /tmp,
/var, /run, /workspace...) with one copy-on-write overlay per real host system directory (`/usr`,
and `/bin`, `/lib*`, `/sbin` where they are not symlinks into /usr) and `/etc` under a mask layer
whose overlay whiteouts hide the host's secrets (shadow files, SSH host keys, TLS private keys).
Writes land in the rootfs's own upper directories, so `pip install` in one step is visible to
the next while the host stays untouched.

An OCI image is one overlay of its layer directories (top first) over the skeleton. A Rootfs only
describes the mounts; the container's child process performs them inside its own mount namespace,
so a crash can never leave a mount behind on the host.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import stat
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.sandbox import records
from runner.sandbox.types import IdMap, SandboxError
from runner.settings import Paths

HOST_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")

# Host files a container must never read: whited out of the `host` image's /etc.
ETC_SECRETS = (
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "security/opasswd",
    "ssh/ssh_host_*",
    "ssl/private",
    "krb5.keytab",
    "credstore",
    "credstore.encrypted",
    "runner",
    "docker/key.json",
    "containers/auth.json",
    "sudoers.d",
)

# (path, mode) of the skeleton's directories; mount points and the usual empty places.
SKELETON_DIRS = (
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("mnt", 0o755),
    ("opt", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("run", 0o755),
    ("srv", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("var", 0o755),
    ("var/tmp", 0o1777),
    ("var/cache", 0o755),
    ("var/lib", 0o755),
    ("var/log", 0o755),
    ("workspace", 0o755),
)


@dataclass(frozen=True)
class Overlay:
    """One overlay mount: `target` is relative to the container's root ('' for the root itself)."""

    target: str
    lowers: tuple[str, ...]  # top first
    upper: str
    work: str

    def options(self) -> str:
        return (
            f"lowerdir={':'.join(self.lowers)},upperdir={self.upper},workdir={self.work},"
            "index=off,redirect_dir=off,metacopy=off"
        )

    def option_list(self) -> list[tuple[str, str]]:
        """The same options one by one, for the new mount API: `lowerdir+` adds a layer, top first."""
        fixed = [("upperdir", self.upper), ("workdir", self.work)]
        fixed += [("index", "off"), ("redirect_dir", "off"), ("metacopy", "off")]
        return [("lowerdir+", lower) for lower in self.lowers] + fixed


def _whiteout(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def _atomic_dir(final: Path, build: Callable[[Path], None]) -> Path:
    """Create `final` once: build it in a sibling temp dir and rename it into place."""
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.exists():
            raise
    return final


class HostImage:
    """What the `host` image is made of on this machine, computed once per process."""

    def __init__(self, paths: Paths) -> None:
        self.symlinks: list[tuple[str, str]] = []  # (name, target) e.g. ("bin", "usr/bin")
        self.dirs: list[str] = []  # real host dirs that get an overlay, e.g. "usr", "etc"
        for path in HOST_SYSTEM_DIRS:
            if os.path.islink(path):
                self.symlinks.append((path[1:], os.readlink(path)))
            elif os.path.isdir(path):
                self.dirs.append(path[1:])
        desc = repr((SKELETON_DIRS, self.symlinks)).encode()
        self.skeleton = _atomic_dir(
            paths.host / f"skel-{hashlib.sha256(desc).hexdigest()[:12]}", self._build_skeleton
        )
        secrets = sorted(
            os.path.relpath(p, "/etc") for pattern in ETC_SECRETS for p in glob.glob(f"/etc/{pattern}")
        )

        def build_mask(mask: Path) -> None:
            for rel in secrets:
                _whiteout(mask / rel)

        self.etc_mask = _atomic_dir(
            paths.host / f"etc-{hashlib.sha256(repr(secrets).encode()).hexdigest()[:12]}", build_mask
        )

    def _build_skeleton(self, root: Path) -> None:
        names = {name for name, _ in self.symlinks}
        for rel, mode in SKELETON_DIRS:
            if rel in names:
                continue
            (root / rel).mkdir(parents=True, exist_ok=True)
            os.chmod(root / rel, mode)
        for name, target in self.symlinks:
            os.symlink(target, root / name)

    def lowers_for(self, name: str) -> tuple[str, ...]:
        if name == "etc":
            return (str(self.etc_mask), "/etc")
        return ("/" + name,)


_host_images: dict[Path, HostImage] = {}


def host_image(paths: Paths) -> HostImage:
    image = _host_images.get(paths.home)
    if image is None:
        image = _host_images[paths.home] = HostImage(paths)
    return image


class Rootfs:
    """A filesystem for one or more containers run one after another (the steps of one job).

    `layers` are OCI layer directories, top first, stacked over the host image (`base="host"`)
    or over the bare skeleton (`base=None`, for images from a registry).
    """

    def __init__(self, paths: Paths, dir: Path, layers: list[Path], base: str | None) -> None:
        self.paths = paths
        self.dir = dir
        self.layers = layers
        self.base = base
        self.merged = dir / "m"
        self.disk: Any = None  # a disk.Disk once `limit_disk` put the upper directories on one
        self.upper_root = dir  # where the upper and work directories are (the disk's mount point, with one)
        self.overlays = self._plan()
        self.templates: dict[object, int] = {}  # mount namespaces holding this rootfs (see template.py)
        self.lock = threading.Lock()
        self.written: dict[Path, str] = {}  # files of ours in `dir` (hosts, resolv.conf): what they say
        self.env: dict[str, str] = {}  # the image's own environment, for callers that run its commands
        self.image_config: dict[str, Any] = {}  # the rest of the image's config (User, WorkingDir...)
        self.on_destroy: list[Callable[[], None]] = []  # e.g. releasing the image's lease in the store
        # the user namespace of its "auto" containers (userns.decide): the mapping, or None and why not
        self.userns: IdMap | None = None
        self.userns_decided = False
        self.userns_note: str | None = None

    @classmethod
    def create(cls, paths: Paths, layers: list[Path] | None = None, base: str | None = "host") -> Rootfs:
        """Make the throwaway upper directories under RUNNER_HOME/tmp (recorded for the sweep)."""
        paths.tmp.mkdir(parents=True, exist_ok=True)
        name = "r" + uuid.uuid4().hex[:11]
        records.write(paths, name, tmp_dirs=[str(paths.tmp / name)])
        directory = paths.tmp / name
        try:
            directory.mkdir()
            (directory / "m").mkdir()
        except OSError as exc:
            records.remove(paths, name)
            raise SandboxError(f"cannot create a root filesystem under {paths.tmp}: {exc.strerror}") from None
        rootfs = cls(paths, directory, list(layers or []), base)
        rootfs.record = name
        for overlay in rootfs.overlays:
            os.makedirs(overlay.upper, exist_ok=True)
            os.makedirs(overlay.work, exist_ok=True)
        return rootfs

    record: str = ""

    def _plan(self) -> list[Overlay]:
        layers = [str(p) for p in self.layers]
        if self.base == "host":
            host = host_image(self.paths)
            up = self.upper_root
            overlays = [Overlay("", (*layers, str(host.skeleton)), str(up / "u"), str(up / "w"))]
            for name in host.dirs:
                sub = tuple(f"{layer}/{name}" for layer in layers if os.path.isdir(f"{layer}/{name}"))
                overlays.append(
                    Overlay(
                        name,
                        (*sub, *host.lowers_for(name)),
                        str(up / f"u.{name}"),
                        str(up / f"w.{name}"),
                    )
                )
            return overlays
        skeleton = str(host_image(self.paths).skeleton)
        return [Overlay("", (*layers, skeleton), str(self.upper_root / "u"), str(self.upper_root / "w"))]

    def limit_disk(self, size: int) -> None:
        """Put the upper directories on a filesystem of `size` bytes of their own (see disk.py), so the
        containers get ENOSPC past it. Before the first container: the uppers must still be empty."""
        from runner.sandbox.disk import Disk

        if self.templates or self.disk is not None:
            raise SandboxError("a disk limit must be set before the root filesystem is first used")
        self.disk = Disk.create(self.dir / "disk.img", size, self.paths.host)
        self.upper_root = self.dir / "d"  # mounted over in the template namespaces only
        self.upper_root.mkdir(exist_ok=True)
        self.overlays = self._plan()

    def uppers(self) -> dict[str, Path]:
        """Upper directory per mount target: what the containers wrote (a layer, once committed)."""
        return {o.target: Path(o.upper) for o in self.overlays}

    def close_templates(self) -> None:
        for fd in self.templates.values():
            os.close(fd)
        self.templates.clear()

    def destroy(self) -> None:
        self.close_templates()
        if self.disk is not None:  # after the templates: their mounts were the loop device's last users
            self.disk.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.record:
            records.remove(self.paths, self.record)
        while self.on_destroy:
            self.on_destroy.pop()()

    def __enter__(self) -> Rootfs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()
