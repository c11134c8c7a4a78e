"""A read-only view of an image being built: paths, symlinks and users, looked up through its layers.

The builder needs to know, without mounting anything, where a container path lands (following the
image's own symlinks: `/bin` is `usr/bin` on merged-/usr systems), which directories exist with which
owner and mode, and who `USER app` is according to the image's /etc/passwd.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from runner.images.errors import ImageError
from runner.settings import Paths


class ImageView:
    """Lookups of container paths in an image being built, through its layers and base, without mounting it.

    Entries are found as overlayfs would find them: the topmost layer that has the path wins, a
    whiteout (character device 0/0) hides it, and so does a file or an opaque directory above it.
    """

    def __init__(self, layers: list[Path], base: str | None, paths: Paths) -> None:
        from runner.sandbox.rootfs import host_image

        host = host_image(paths)
        self.layers = layers  # top first
        self.skeleton = host.skeleton
        self.host_dirs = set(host.dirs) if base == "host" else set()

    def resolve(self, path: str, hops: int = 0) -> tuple[str, str]:
        """(`path` with every symlink followed inside the image, kind): kind is dir, file, link or none.

        A last component that is a symlink is followed only to a directory; else the link itself is meant.
        """
        parts = [p for p in path.split("/") if p]
        done: list[str] = []
        kind = "dir"  # the root
        while parts:
            name = parts.pop(0)
            kind, target, _ = self.entry("/".join([*done, name]))
            if kind != "link" or target is None:
                done.append(name)
                continue
            hops += 1
            if hops > 40:
                raise ImageError(f"{path}: too many levels of symbolic links in the image")
            followed = os.path.normpath(os.path.join("/" + "/".join(done), target))
            if not parts:
                resolved, target_kind = self.resolve(followed, hops)
                if target_kind == "dir":
                    return resolved, "dir"
                return "/" + "/".join([*done, name]), "link"
            parts = [p for p in followed.split("/") if p] + parts
            done = []
        return "/" + "/".join(done), kind

    def entry(self, rel: str) -> tuple[str, str | None, Path | None]:
        """(kind, link target, the path that provides it) of container path /rel, symlinks not followed."""
        parts = rel.split("/")
        bottom = Path("/") if parts[0] in self.host_dirs else self.skeleton
        for root in [*self.layers, bottom]:
            found, last = self._in(root, parts)
            if found is not None:
                return found
            if last:
                break
        return "none", None, None

    @staticmethod
    def _in(root: Path, parts: list[str]) -> tuple[tuple[str, str | None, Path | None] | None, bool]:
        """(kind and link target of root/parts, None if root lacks it; whether roots below are hidden)."""
        hidden = False
        for i in range(1, len(parts)):
            ancestor = root.joinpath(*parts[:i])
            try:
                st = os.lstat(ancestor)
            except OSError:
                return None, hidden  # this layer has nothing there
            if not stat.S_ISDIR(st.st_mode):
                return ("none", None, None), True  # a file, whiteout or link above the path hides it
            with contextlib.suppress(OSError):
                hidden = (
                    hidden or os.getxattr(ancestor, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
                )
        full = root.joinpath(*parts)
        try:
            st = os.lstat(full)
        except OSError:
            return None, hidden
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return ("none", None, None), True  # a whiteout
        if stat.S_ISLNK(st.st_mode):
            return ("link", os.readlink(full), full), True
        return ("dir" if stat.S_ISDIR(st.st_mode) else "file", None, full), True


def make_workdir(view: ImageView, uppers: dict[str, Path], path: str) -> None:
    """Make the RUN's working directory `path` (symlinks resolved) exist: missing directories are created
    in the upper dir of the mount that holds them; the image's directories above them are copied up with
    their mode and owner, so that `WORKDIR /tmp/x` leaves /tmp as it was."""
    parts = [p for p in path.split("/") if p]
    if not parts or view.entry("/".join(parts))[0] == "dir":
        return
    target = parts[0] if parts[0] in uppers and parts[0] else ""
    make_dirs(view, uppers[target], parts, 1 if target else 0)


def make_dirs(view: ImageView, root: Path, parts: list[str], skip: int) -> None:
    """Directories root/parts[skip:] (container path /parts): the image's own keep their mode and owner."""
    for i in range(skip + 1, len(parts) + 1):
        dest = root.joinpath(*parts[skip:i])
        if dest.is_dir():
            continue
        kind, _, source = view.entry("/".join(parts[:i]))
        if kind == "dir" and source is not None:
            st = os.stat(source)
            dest.mkdir()
            os.chmod(dest, stat.S_IMODE(st.st_mode))
            os.chown(dest, st.st_uid, st.st_gid)
        elif kind == "none":
            dest.mkdir(mode=0o755)
        else:
            return  # a file in the way: the container says the directory does not exist


def user_ids(user: str, view: ImageView | None = None) -> tuple[int, int]:
    """uid and gid of `user[:group]` (USER, --chown): numbers, or names from the image's /etc/passwd and
    /etc/group; a user's primary group when no group is given."""
    name, _, group = user.partition(":")
    if name.isdigit() and (not group or group.isdigit()):
        return int(name), int(group or name)
    if name in ("", "root") and group in ("", "root"):
        return 0, 0
    if name.isdigit() or name in ("", "root"):
        uid = primary = int(name) if name.isdigit() else 0
    elif (entry := _id_table(view, "/etc/passwd").get(name)) is not None:
        uid, primary = entry
    else:
        raise ImageError(f"USER {user!r}: no user {name!r} in the image's /etc/passwd")
    if not group:
        return uid, primary
    if group.isdigit():
        return uid, int(group)
    if (found := _id_table(view, "/etc/group").get(group)) is not None:
        return uid, found[0]
    raise ImageError(f"USER {user!r}: no group {group!r} in the image's /etc/group")


def _id_table(view: ImageView | None, path: str) -> dict[str, tuple[int, int]]:
    """name -> (id, primary gid) from an /etc/passwd or /etc/group of the image."""
    if view is None:
        return {}
    resolved, kind = view.resolve(path)
    source = view.entry(resolved.lstrip("/"))[2]
    if kind != "file" or source is None:
        return {}
    table: dict[str, tuple[int, int]] = {}
    for line in source.read_text(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            second = fields[3] if len(fields) > 3 and fields[3].isdigit() else fields[2]
            table.setdefault(fields[0], (int(fields[2]), int(second)))
    return table


def home_of(view: ImageView, uid: int) -> str:
    resolved, kind = view.resolve("/etc/passwd")
    source = view.entry(resolved.lstrip("/"))[2]
    if kind == "file" and source is not None:
        for line in source.read_text(errors="replace").splitlines():
            fields = line.split(":")
            if len(fields) >= 6 and fields[2] == str(uid) and fields[5].startswith("/"):
                return fields[5]
    return "/root" if uid == 0 else "/"


def owner_ids(chown: str, file: str, line: int, view: ImageView | None = None) -> tuple[int, int]:
    if not chown:
        return 0, 0
    try:
        return user_ids(chown, view)
    except ImageError as exc:
        reason = str(exc).partition(": ")[2]
        raise ImageError(f"{file}:{line}: --chown={chown}: {reason}") from None


def parse_mode(chmod: str, file: str, line: int) -> int | None:
    if not chmod:
        return None
    try:
        mode = int(chmod, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise ImageError(f"{file}:{line}: --chmod={chmod}: use an octal mode such as 0644")
    return mode
