"""git_context on real repositories: branch, tag, sha, repo name."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from runner.sources.gitinfo import git_context, repo_name_from_url


def git(repo: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
        GIT_CONFIG_GLOBAL="/dev/null",
    )
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "my-project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "feature/x")
    (repo / "f").write_text("1")
    git(repo, "add", "f")
    git(repo, "commit", "-q", "-m", "one")
    return repo


def test_branch_and_sha_without_tag(repo: Path) -> None:
    assert git_context(repo) == {
        "branch": "feature/x",
        "tag": "",
        "sha": git(repo, "rev-parse", "HEAD"),
        "event": "exec",
        "repo": "my-project",
    }


def test_tag_only_when_head_is_exactly_at_it(repo: Path) -> None:
    git(repo, "tag", "v1.2.0")
    git(repo, "tag", "-a", "v1.10.0", "-m", "annotated")
    assert git_context(repo)["tag"] == "v1.10.0"
    (repo / "f").write_text("2")
    git(repo, "commit", "-q", "-am", "two")
    assert git_context(repo)["tag"] == ""


def test_detached_head_has_no_branch(repo: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    ctx = git_context(repo)
    assert ctx["branch"] == "" and ctx["sha"] == sha


def test_repo_name_from_origin_and_subdirectory(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "git@example.com:group/real-name.git")
    (repo / "sub").mkdir()
    assert git_context(repo / "sub")["repo"] == "real-name"


def test_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_context(plain) == {"branch": "", "tag": "", "sha": "", "event": "exec", "repo": "plain"}


def test_repository_without_commits(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    assert git_context(repo) == {"branch": "main", "tag": "", "sha": "", "event": "exec", "repo": "empty"}


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://github.com/org/name.git", "name"),
        ("https://gitlab.com/group/sub/name/", "name"),
        ("git@github.com:org/name.git", "name"),
        ("host:name.git", "name"),
        ("/srv/git/name.git", "name"),
    ],
)
def test_repo_name_from_url(url: str, name: str) -> None:
    assert repo_name_from_url(url) == name
