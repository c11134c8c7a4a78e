"""Workspace snapshots: copy a working tree as git sees it, so a job can never touch the user's files.

What a job gets under `/workspace` is exactly what `git status` would call the tree: tracked files
with their uncommitted changes, plus untracked files that are not ignored. Deleted-but-tracked files
are absent, symlinks stay symlinks (never followed), file modes are kept.

The `.git` directory is not copied and none is recreated: a job that needs the commit reads it from
the `git` expression context (`${{ git.sha }}`), exactly as on the workers, whose checkouts are
made from a mirror. `.runner/` (where `runner exec` keeps its results) is never copied.
A directory that is not in a git work tree is copied whole except `.git/` and `.runner/`.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

EXCLUDED = frozenset({".git", ".runner"})


class WorkspaceError(Exception):
    """The working tree cannot be read; the message names the path."""


def _git(repo_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")  # never write the user's index
    try:
        return subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, env=env, check=False)
    except FileNotFoundError:
        raise WorkspaceError("git is not installed (needed to read the working tree)") from None


def in_git_work_tree(directory: Path) -> bool:
    result = _git(directory, "rev-parse", "--is-inside-work-tree")
    return result.returncode == 0 and result.stdout.strip() == b"true"


def git_paths(repo_dir: Path) -> list[str]:
    """Paths under `repo_dir` that git would ship: tracked plus untracked-not-ignored, relative to it."""
    result = _git(
        repo_dir, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--exclude=/.runner/"
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise WorkspaceError(f"git ls-files failed in {repo_dir}: {message[-1] if message else 'unknown'}")
    paths = sorted({p.decode("utf-8", "surrogateescape") for p in result.stdout.split(b"\0") if p})
    return [p.rstrip("/") for p in paths if p.split("/", 1)[0] not in EXCLUDED]


def _walk(root: Path) -> Iterator[str]:
    """Every file, symlink and empty directory under a plain directory, relative to it."""
    for current, dirs, files in os.walk(root):
        rel = os.path.relpath(current, root)
        prefix = "" if rel == "." else rel + "/"
        dirs[:] = sorted(d for d in dirs if d != ".git" and not (d == ".runner" and not prefix))
        for name in [d for d in dirs if os.path.islink(os.path.join(current, d))]:
            dirs.remove(name)  # a symlink to a directory is copied as the link, not walked
            yield prefix + name
        if not dirs and not files and prefix:
            yield prefix.rstrip("/")
        for name in sorted(files):
            if name != ".git":
                yield prefix + name


def _copy_one(src: Path, dst: Path) -> None:
    try:
        info = src.lstat()
    except FileNotFoundError:
        return  # tracked but deleted in the working tree
    dst.parent.mkdir(parents=True, exist_ok=True)
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(info.st_mode):
        shutil.copyfile(src, dst, follow_symlinks=False)
        os.chmod(dst, stat.S_IMODE(info.st_mode))
    elif stat.S_ISDIR(info.st_mode):
        if in_git_work_tree(src) and (src / ".git").exists():
            _copy_tree(src, dst)  # a checked-out submodule or nested repository: its files as git sees them
        else:
            dst.mkdir(exist_ok=True)
            _copy_plain(src, dst)
    # sockets, fifos and devices are not workspace content: skipped


def _copy_plain(src: Path, dest: Path) -> None:
    for rel in _walk(src):
        _copy_one(src / rel, dest / rel)


def _copy_tree(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if in_git_work_tree(src):
        for rel in git_paths(src):
            _copy_one(src / rel, dest / rel)
    else:
        _copy_plain(src, dest)


def snapshot(repo_dir: Path, dest: Path) -> Path:
    """Copy the working tree at `repo_dir` (a repository or a directory inside one) to `dest`."""
    repo_dir = Path(repo_dir)
    if not repo_dir.is_dir():
        raise WorkspaceError(f"{repo_dir} is not a directory")
    dest = Path(dest)
    try:
        _copy_tree(repo_dir, dest)
    except PermissionError as exc:
        raise WorkspaceError(f"cannot copy {exc.filename}: permission denied") from None
    except OSError as exc:
        where = exc.filename or repo_dir
        raise WorkspaceError(f"cannot copy {where}: {exc.strerror or exc}") from None
    return dest
