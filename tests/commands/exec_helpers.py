"""Helpers for the `runner exec` tests: real git repositories and the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, **GIT_ENV),
        check=True,
    ).stdout.strip()


def make_repo(root: Path, ci_yml: str, files: dict[str, str] | None = None, name: str = "proj") -> Path:
    """A committed git repository with this ci.yml and files."""
    repo = root / name
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "ci.yml").write_text(textwrap.dedent(ci_yml))
    for rel, text in (files or {}).items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def runner_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_SECRETS_FILE"}
    env.update(RUNNER_HOME=str(home), NO_COLOR="1", **extra)
    return env


def runner_exec(
    cwd: Path, *args: str, home: Path, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    """`python -m runner.cli exec ARGS...` in `cwd`, with its own RUNNER_HOME."""
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", "exec", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=runner_env(home, **extra),
        timeout=timeout,
    )


def tree_state(root: Path) -> dict[str, tuple[int, int, float, bytes]]:
    """Everything about a tree that a run must not change (.git included, .runner excluded)."""
    state = {}
    for current, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not (d == ".runner" and Path(current) == root)]
        for name in dirs + names:
            path = Path(current) / name
            info = path.lstat()
            content = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            state[str(path)] = (info.st_mode, info.st_size, info.st_mtime, content)
    return state
