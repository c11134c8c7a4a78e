"""The parts of an image config a container is started from: environment, working dir, user, command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.images.errors import ImageError

BASE_LABEL = "org.runner.base"  # "host" when an image's layers sit on the host image, not on a base layer


def ensure_portable(config: dict[str, Any], name: str, action: str) -> None:
    """Refuse to export or push an image built on `host`: its layers are only what the build changed
    on this machine's /usr and /etc, and would make a broken image anywhere else."""
    labels = (config.get("config") or {}).get("Labels") or {}
    if isinstance(labels, dict) and labels.get(BASE_LABEL) == "host":
        raise ImageError(
            f"cannot {action} {name}: it is built on the host image, so its layers hold only changes to this"
            " machine's system directories; build it FROM a registry image to share it"
        )


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
