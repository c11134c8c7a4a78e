"""Server and worker settings from the environment (contract.md §4), read once when a process starts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from runner.settings import Paths, runner_home

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
DEFAULT_BODY_LIMIT = 5 * 1024 * 1024  # bytes of a webhook body
DEFAULT_VISIBILITY_TIMEOUT = 6 * 3600  # seconds: above the longest job timeout a ci.yml may ask for
DEFAULT_LEASE = 30.0  # seconds a worker's claim on a job lives without a heartbeat


def _float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        return default


@dataclass(frozen=True)
class ServerSettings:
    home: Path
    database_url: str
    broker_url: str
    webhook_secret: str | None = None
    api_token: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    body_limit: int = DEFAULT_BODY_LIMIT
    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT
    lease: float = DEFAULT_LEASE
    allow_local_repos: bool = False  # webhooks may name file:// URLs and paths (tests, trying it out)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def paths(self) -> Paths:
        return Paths(self.home)

    @property
    def redis_url(self) -> str:
        """Live log streams live in Redis: the broker's when it is Redis, else RUNNER_REDIS_URL."""
        return os.environ.get("RUNNER_REDIS_URL") or self.broker_url

    @property
    def storage_root(self) -> Path:
        return self.home / "storage"

    @classmethod
    def from_env(cls) -> ServerSettings:
        home = runner_home()
        return cls(
            home=home,
            database_url=os.environ.get("RUNNER_DATABASE_URL") or f"sqlite:///{home / 'runner.db'}",
            broker_url=os.environ.get("RUNNER_BROKER_URL") or DEFAULT_BROKER,
            webhook_secret=os.environ.get("RUNNER_WEBHOOK_SECRET") or None,
            api_token=os.environ.get("RUNNER_API_TOKEN") or None,
            public_url=(os.environ.get("RUNNER_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            body_limit=int(_float("RUNNER_WEBHOOK_BODY_LIMIT", DEFAULT_BODY_LIMIT)),
            visibility_timeout=_float("RUNNER_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT),
            lease=_float("RUNNER_JOB_LEASE", DEFAULT_LEASE),
            allow_local_repos=os.environ.get("RUNNER_ALLOW_LOCAL_REPOS", "").lower() in ("1", "true", "yes"),
        )
