"""Builders for the server tests: git repositories, signed webhook requests, the shared payloads
adapted to a local repository, and settings pointing at a temporary RUNNER_HOME."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from runner.server.settings import ServerSettings

SECRET = "s3cret-for-tests"
TOKEN = "api-token-for-tests"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "webhooks"
OWN_PUSH = Path(__file__).resolve().parent / "data" / "github-push.json"  # the project's own, small


def shared_fixture(forge: str, name: str) -> Path:
    """A payload of the shared corpus; the test is skipped, saying why, where the corpus is absent."""
    if not FIXTURES.is_dir():
        pytest.skip(f"the shared webhook fixtures are not at {FIXTURES} (they live beside the repository)")
    return FIXTURES / forge / name


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return result.stdout.strip()


def make_repo(path: Path, files: dict[str, str], branch: str = "main", message: str = "first") -> str:
    """A repository at `path` with `files` committed on `branch`; returns the sha."""
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".git").exists():
        git(path, "init", "-q", "-b", branch)
    return commit(path, files, message)


def commit(path: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", message)
    return git(path, "rev-parse", "HEAD")


def settings_for(
    tmp_path: Path, broker_url: str, database_url: str | None = None, **extra: Any
) -> ServerSettings:
    home = tmp_path / "home"
    postgres = os.environ.get("RUNNER_TEST_POSTGRES_URL")
    if database_url is None and postgres:  # CI runs these on PostgreSQL too, from an empty database
        empty_database(postgres)
        database_url = postgres
    values: dict[str, Any] = {
        "home": home,
        "database_url": database_url or f"sqlite:///{home / 'runner.db'}",
        "broker_url": broker_url,
        "webhook_secret": SECRET,
        "api_token": TOKEN,
        "allow_local_repos": True,  # the tests' repositories are served over file://
    }
    values.update(extra)
    return ServerSettings(**values)


def empty_database(url: str) -> None:
    """Drop every table of the store (and Alembic's version) so that a test starts from nothing."""
    from sqlalchemy import text

    from runner.server.db import make_engine
    from runner.server.models import Base

    engine = make_engine(url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


def github_push(
    repo: Path, sha: str, branch: str = "main", message: str = "change", **over: Any
) -> dict[str, Any]:
    """A GitHub push payload for a local repository (the shape of the shared fixture)."""
    data: dict[str, Any] = json.loads(OWN_PUSH.read_text())
    data.update(ref=f"refs/heads/{branch}", after=sha, deleted=False, created=False)
    data["repository"].update(full_name=f"local/{repo.name}", clone_url=f"file://{repo}")
    data["head_commit"].update(id=sha, message=message)
    data.update(over)
    return data


def adapt(forge: str, name: str, repo: Path, sha: str, branch: str = "main") -> dict[str, Any]:
    """A shared payload with its repository URL and commit replaced by a local repository's."""
    data: dict[str, Any] = json.loads(shared_fixture(forge, name).read_text())
    url = f"file://{repo}"
    data["ref"] = f"refs/heads/{branch}"
    data["after"] = sha
    if forge == "gitlab":
        data["checkout_sha"] = sha
        for key in ("git_http_url", "http_url", "git_ssh_url", "url", "ssh_url"):
            if key in data.get("project", {}):
                data["project"][key] = url
        data["project"]["path_with_namespace"] = f"local/{repo.name}"
        for key in ("git_http_url", "git_ssh_url", "url"):
            if key in data.get("repository", {}):
                data["repository"][key] = url
    else:
        data["repository"].update(full_name=f"local/{repo.name}", clone_url=url)
        for key in ("git_url", "ssh_url", "html_url"):
            data["repository"].pop(key, None)
    for entry in data.get("commits") or []:
        entry["id"] = sha
    if data.get("head_commit"):
        data["head_commit"]["id"] = sha
    return data


def signed(forge: str, body: bytes, secret: str = SECRET, delivery: str | None = None) -> dict[str, str]:
    """Headers of a signed push delivery of `forge`."""
    delivery = delivery or str(uuid.uuid4())
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if forge == "github":
        return {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": f"sha256={digest}",
            "Content-Type": "application/json",
        }
    if forge == "gitlab":
        return {
            "X-Gitlab-Event": "Push Hook",
            "X-Gitlab-Event-UUID": delivery,
            "X-Gitlab-Token": secret,
            "Content-Type": "application/json",
        }
    return {
        "X-Gitea-Event": "push",
        "X-Gitea-Delivery": delivery,
        "X-Gitea-Signature": digest,
        "Content-Type": "application/json",
    }


def encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()
