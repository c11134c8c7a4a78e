"""What a pipeline run takes and gives back: run options and the per-job, per-step results.

These are plain dataclasses so that `runner exec` can write `summary.json` and a worker can store
a build from them without knowing anything about how the engine ran the jobs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runner.pipeline.events import JobStatus, StepStatus
from runner.settings import Paths, concurrency


class PipelineError(Exception):
    """The run cannot start (unknown `--job` name, a job that needs an unknown job, a cycle).

    The message is one line meant for the user.
    """


@dataclass
class RunOptions:
    workspace: Path  # a prepared snapshot of the repository: copied per job, never modified
    paths: Paths
    artifacts_dir: Path  # artifacts go to artifacts_dir/<job>/<relative path>
    secrets: dict[str, str] = field(default_factory=dict)  # every known secret; a job gets what it lists
    extra_env: dict[str, str] = field(default_factory=dict)
    concurrency: int = field(default_factory=concurrency)
    only: list[str] | None = None  # run these jobs (names or base names) and everything they need


@dataclass
class StepResult:
    name: str
    index: int  # 0-based position in the job's steps
    status: StepStatus
    exit_code: int | None = None
    reason: str = "exited"  # exited | timeout | oom | killed | skipped | canceled | error
    duration: float = 0.0
    cpu_time: float = 0.0
    peak_memory: int = 0


@dataclass
class Attempt:
    """How one attempt ended."""

    status: JobStatus = "passed"
    reason: str = ""
    steps: list[StepResult] = field(default_factory=list)
    tests: dict[str, int] = field(default_factory=dict)
    cases: list[Any] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)

    def fail(self, status: JobStatus, reason: str) -> None:
        """Record the first failure; an `error` (the runner's fault) outranks a plain failure."""
        if self.status == "passed" or (status == "error" and self.status == "failed"):
            self.status, self.reason = status, reason


@dataclass
class JobResult:
    name: str
    status: JobStatus
    reason: str = ""
    allow_failure: bool = False
    attempts: int = 0  # 0: never started (skipped or canceled while queued)
    duration: float = 0.0
    started_at: float | None = None  # epoch seconds of the first attempt's start
    finished_at: float | None = None
    steps: list[StepResult] = field(default_factory=list)
    tests: dict[str, int] = field(default_factory=dict)  # total, passed, failed, error, skipped, flaky
    cases: list[Any] = field(default_factory=list)  # runner.reports test cases
    artifacts: list[str] = field(default_factory=list)  # paths relative to artifacts_dir/<job>/

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("cases")
        return data


@dataclass
class PipelineResult:
    status: JobStatus  # passed | failed | canceled | error
    duration: float = 0.0
    started_at: float = 0.0  # epoch seconds
    finished_at: float = 0.0
    jobs: dict[str, JobResult] = field(default_factory=dict)  # in pipeline order

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "duration": self.duration,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "jobs": [job.to_dict() for job in self.jobs.values()],
        }
