"""What an evaluation of `${{ }}` may see besides the ci.yml itself: git facts, workspace, extra env."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

GIT_KEYS = ("branch", "tag", "sha", "event", "repo")


@dataclass(frozen=True)
class EvalContext:
    """Inputs of `compile_pipeline`.

    `git` has `branch`, `tag`, `sha`, `event` (`push`, `exec`, ...) and `repo`; missing keys read
    as "". `workspace` is where `hash_files()` looks (None: it yields ""). `extra_env` is merged
    over every job's environment (it wins over ci.yml, like `runner exec --env`).
    """

    git: dict[str, str] = field(default_factory=dict)
    workspace: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
