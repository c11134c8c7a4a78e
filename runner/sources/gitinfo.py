"""Git facts about a local working tree (branch, tag, sha, repo name) for the `git` expression context."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def _git(repo_dir: Path, *args: str) -> str:
    """The stripped stdout of a git command, or "" when it fails (no repository, no commits, no git)."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    try:
        result = subprocess.run(
            ["git", "-C", str(repo_dir), *args], capture_output=True, text=True, env=env, check=False
        )
    except (FileNotFoundError, NotADirectoryError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def repo_name_from_url(url: str) -> str:
    """`git@host:group/name.git`, `https://host/group/name` -> `name`."""
    tail = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail.removesuffix(".git")


def git_context(repo_dir: Path) -> dict[str, str]:
    """`{branch, tag, sha, event, repo}` for a local run; empty strings where git has no answer.

    `tag` is set only when HEAD is exactly at a tag (the highest version when there are several);
    `repo` is the name in the `origin` remote's URL, else the directory's name.
    """
    repo_dir = Path(repo_dir).resolve()
    sha = _git(repo_dir, "rev-parse", "-q", "--verify", "HEAD^{commit}")
    branch = _git(repo_dir, "symbolic-ref", "-q", "--short", "HEAD")
    tags = _git(repo_dir, "tag", "--points-at", "HEAD", "--sort=-v:refname").splitlines() if sha else []
    origin = _git(repo_dir, "remote", "get-url", "origin")
    return {
        "branch": branch,
        "tag": tags[0] if tags else "",
        "sha": sha,
        "event": "exec",
        "repo": (repo_name_from_url(origin) if origin else "") or repo_dir.name,
    }
