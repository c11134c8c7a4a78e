"""Settings from the environment (contract.md §4), read when asked for, never at import time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def runner_home() -> Path:
    """RUNNER_HOME: `/var/lib/runner` as root, else `~/.local/share/runner`."""
    value = os.environ.get("RUNNER_HOME")
    if value:
        return Path(value)
    if os.geteuid() == 0:
        return Path("/var/lib/runner")
    return Path.home() / ".local" / "share" / "runner"


def concurrency() -> int:
    value = os.environ.get("RUNNER_CONCURRENCY")
    if value and value.isdigit() and int(value) > 0:
        return int(value)
    return os.cpu_count() or 1


def insecure_registries() -> list[str]:
    value = os.environ.get("RUNNER_INSECURE_REGISTRIES", "localhost,127.0.0.1")
    return [item.strip() for item in value.split(",") if item.strip()]


def secrets_file() -> Path | None:
    value = os.environ.get("RUNNER_SECRETS_FILE")
    return Path(value) if value else None


@dataclass(frozen=True)
class Paths:
    """Where the runner keeps its state under RUNNER_HOME. Short names keep overlay options small."""

    home: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home))

    @classmethod
    def default(cls) -> Paths:
        return cls(runner_home())

    @property
    def run(self) -> Path:  # records of live containers, for the sweep after a crash
        return self.home / "run"

    @property
    def tmp(self) -> Path:  # throwaway upper dirs and workspaces (same filesystem as layers)
        return self.home / "tmp"

    @property
    def layers(self) -> Path:
        return self.home / "l"

    @property
    def images(self) -> Path:
        return self.home / "images"

    @property
    def caches(self) -> Path:
        return self.home / "caches"

    @property
    def mirrors(self) -> Path:
        return self.home / "git"

    @property
    def host(self) -> Path:  # the skeleton and /etc mask of the `host` image
        return self.home / "host"

    @property
    def storage(self) -> Path:  # logs and artifacts of server builds (runner.logs.storage)
        return self.home / "storage"
