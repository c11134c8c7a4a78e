"""Shared by the security tests: real git repositories run through the real `runner exec`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PROJECT = str(Path(__file__).resolve().parents[2])
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


def make_repo(root: Path, ci_yml: str, files: dict[str, str | bytes] | None = None) -> Path:
    """A committed git repository with this ci.yml and files (symlinks are made by the caller)."""
    repo = root / "proj"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "ci.yml").write_text(textwrap.dedent(ci_yml))
    for rel, content in (files or {}).items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    commit(repo)
    return repo


def commit(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "change")


def runner_exec(
    repo: Path, *args: str, home: Path, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m runner.cli exec ARGS...` in `repo`, with its own RUNNER_HOME."""
    full_env = {k: v for k, v in os.environ.items() if k != "RUNNER_SECRETS_FILE"}
    full_env.update(RUNNER_HOME=str(home), NO_COLOR="1", **(env or {}))
    path = full_env.get("PYTHONPATH")
    full_env["PYTHONPATH"] = PROJECT + (os.pathsep + path if path else "")  # this checkout's runner
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", "exec", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def run_dir(repo: Path, n: int = 1) -> Path:
    return repo / ".runner" / "runs" / str(n)


def log_lines(repo: Path, job: str, n: int = 1) -> list[str]:
    """The job's log without its time prefixes."""
    return [line[13:] for line in (run_dir(repo, n) / "logs" / f"{job}.log").read_text().splitlines()]


def every_file_text(root: Path) -> str:
    """All bytes under `root`, as text, for leak checks."""
    parts = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            parts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)
