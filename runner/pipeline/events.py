"""Events: the one small interface through which a running pipeline talks to the world.

The engine emits events to a `Sink`; the CLI printer, the run-directory writer, the worker (which
ships them to Redis and the build store) and tests are sinks. Sinks are called from the engine's
threads (one per running job), so a sink must be thread-safe; `FanOut` serialises nothing itself.
Log lines reach sinks already masked: no sink ever sees a secret.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

JobStatus = Literal["queued", "running", "passed", "failed", "skipped", "canceled", "error"]
StepStatus = Literal["running", "passed", "failed", "skipped", "canceled", "error"]


@dataclass(frozen=True)
class PipelineStarted:
    jobs: tuple[str, ...]
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class JobStarted:
    job: str
    attempt: int = 1
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class PhaseFinished:
    """A timed phase of a job outside its steps: clone, image, cache_restore, services, cache_save, upload."""

    job: str
    phase: str
    duration: float
    detail: str = ""  # e.g. "cache hit pip-3f2a", "image CACHED"
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StepStarted:
    job: str
    step: str
    index: int
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class LogLine:
    """One line of output (without its newline), already masked. `step` is None for the job's own lines."""

    job: str
    step: str | None
    stream: str  # stdout | stderr | runner | service:<name>
    text: str
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StepFinished:
    job: str
    step: str
    index: int
    status: StepStatus
    exit_code: int | None = None
    reason: str = "exited"  # exited | timeout | oom | killed | skipped
    duration: float = 0.0
    cpu_time: float = 0.0
    peak_memory: int = 0
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class TestsCollected:
    job: str
    counts: dict[str, int]  # total, passed, failed, error, skipped, flaky
    cases: tuple[Any, ...] = ()  # runner.reports test cases
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ArtifactStored:
    job: str
    path: str  # relative to the job's artifact root
    size: int
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class JobFinished:
    job: str
    status: JobStatus
    duration: float = 0.0
    attempt: int = 1
    reason: str = ""  # why it failed, was skipped or errored: one line for the user
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class PipelineFinished:
    status: JobStatus  # passed | failed | canceled | error
    duration: float = 0.0
    time: float = field(default_factory=time.time)


Event = (
    PipelineStarted
    | JobStarted
    | PhaseFinished
    | StepStarted
    | LogLine
    | StepFinished
    | TestsCollected
    | ArtifactStored
    | JobFinished
    | PipelineFinished
)


class Sink(Protocol):
    def emit(self, event: Event) -> None: ...


class FanOut:
    """Sends each event to several sinks, in order."""

    def __init__(self, *sinks: Sink) -> None:
        self.sinks = list(sinks)

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)


class Collector:
    """Keeps every event: for tests and for building summaries."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]

    def lines(self, job: str | None = None) -> list[str]:
        return [e.text for e in self.of(LogLine) if job is None or e.job == job]
