"""The parts of an image config a container is started from: environment, working dir, user, command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ImageConfig:
    """What `config.config` of an OCI image says about running it (empty values where it says nothing)."""

    env: list[str] = field(default_factory=list)  # "KEY=value" entries, in order
    workdir: str = ""
    user: str = ""
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    architecture: str = ""
    os: str = ""

    @classmethod
    def from_json(cls, config: dict[str, Any]) -> ImageConfig:
        run = config.get("config") or {}
        if not isinstance(run, dict):
            run = {}

        def strings(value: Any) -> list[str]:
            if isinstance(value, str):
                return [value]
            return [str(x) for x in value] if isinstance(value, list) else []

        labels = run.get("Labels") or {}
        return cls(
            env=strings(run.get("Env")),
            workdir=str(run.get("WorkingDir") or ""),
            user=str(run.get("User") or ""),
            entrypoint=strings(run.get("Entrypoint")),
            cmd=strings(run.get("Cmd")),
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
            architecture=str(config.get("architecture") or ""),
            os=str(config.get("os") or ""),
        )

    def env_dict(self) -> dict[str, str]:
        """The environment as a mapping; a later entry for the same key wins, as in Docker."""
        result: dict[str, str] = {}
        for entry in self.env:
            key, _, value = entry.partition("=")
            if key:
                result[key] = value
        return result
