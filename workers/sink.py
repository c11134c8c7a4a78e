"""The worker's sink: a job's events to the build store, the live log stream and log storage.

Log lines go to the Redis stream at once (the page shows them live) and to log storage in small
batches; steps, tests and artifacts go to the store as they happen. A failing log backend never
fails the job: the engine treats a raising sink as the runner's own error, so errors stop here.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from runner.pipeline.artifacts import job_dirname
from runner.pipeline.events import (
    ArtifactStored,
    Event,
    JobFinished,
    JobStarted,
    LogLine,
    PhaseFinished,
    StepFinished,
    StepStarted,
    TestsCollected,
)
from workers.context import WorkerContext

log = logging.getLogger("workers.sink")
FLUSH_LINES = 200
FLUSH_SECONDS = 0.5


def line_record(event: Event) -> dict[str, object]:
    """The JSON form of a log-worthy event, as the live stream and the pages read it."""
    if isinstance(event, LogLine):
        return {"t": event.time, "step": event.step, "stream": event.stream, "text": event.text}
    if isinstance(event, StepStarted):
        return {"t": event.time, "step": event.step, "stream": "runner", "text": f"--- step {event.step}"}
    if isinstance(event, StepFinished):
        text = f"--- step {event.step}: {event.status} ({event.reason}, {event.duration:.1f}s)"
        return {"t": event.time, "step": event.step, "stream": "runner", "text": text}
    if isinstance(event, JobStarted) and event.attempt > 1:
        return {"t": event.time, "step": None, "stream": "runner", "text": f"--- attempt {event.attempt}"}
    if isinstance(event, PhaseFinished):
        text = f"--- {event.phase} {event.duration:.1f}s {event.detail}".rstrip()
        return {"t": event.time, "step": None, "stream": "runner", "text": text}
    if isinstance(event, JobFinished):
        text = f"--- job {event.status}" + (f": {event.reason}" if event.reason else "")
        return {"t": event.time, "step": None, "stream": "runner", "text": text}
    return {}


class WorkerSink:
    def __init__(self, ctx: WorkerContext, build_id: int, job_id: int, job: str) -> None:
        self.ctx, self.build_id, self.job_id, self.job = ctx, build_id, job_id, job
        self.artifacts_root: Path | None = None
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._flushed = time.monotonic()
        self.first_line_at: float | None = None

    def emit(self, event: Event) -> None:
        try:
            self._apply(event)
        except Exception as exc:
            log.warning("job %s: event %s not recorded: %s", self.job, type(event).__name__, exc)

    def _apply(self, event: Event) -> None:
        record = line_record(event)
        if record:
            self._line(record)
        store = self.ctx.store
        if isinstance(event, StepStarted):
            store.step_started(self.job_id, event.index, event.step, event.time)
        elif isinstance(event, StepFinished):
            store.step_finished(
                self.job_id, event.index, event.step,
                {"status": event.status, "exit_code": event.exit_code, "reason": event.reason,
                 "duration": event.duration},
            )  # fmt: skip
        elif isinstance(event, TestsCollected):
            store.tests_collected(self.build_id, self.job_id, dict(event.counts), list(event.cases))
        elif isinstance(event, PhaseFinished):
            store.phase_finished(self.job_id, event.phase, event.duration)
        elif isinstance(event, ArtifactStored):
            self._artifact(event)
        elif isinstance(event, JobFinished):
            self.close()

    def _line(self, record: dict[str, object]) -> None:
        if self.first_line_at is None:
            self.first_line_at = time.time()
        try:
            self.ctx.logs.append(self.build_id, self.job, record)
        except Exception as exc:
            log.warning("job %s: live log unavailable: %s", self.job, exc)
        with self._lock:
            self._pending.append(str(record.get("text", "")))
            due = len(self._pending) >= FLUSH_LINES or time.monotonic() - self._flushed >= FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
            self._flushed = time.monotonic()
        if lines:
            self.ctx.storage.append_log(self.build_id, self.job, "".join(f"{line}\n" for line in lines))

    def _artifact(self, event: ArtifactStored) -> None:
        if self.artifacts_root is None:
            return
        source = self.artifacts_root / job_dirname(self.job) / event.path
        with open(source, "rb") as handle:
            self.ctx.storage.put_artifact(self.build_id, self.job, event.path, handle)
        self.ctx.store.artifact_stored(self.job_id, event.path, event.size)

    def close(self) -> None:
        """Write what is buffered and mark the live stream ended."""
        try:
            self.flush()
        except Exception as exc:
            log.warning("job %s: log not stored: %s", self.job, exc)
        try:
            self.ctx.logs.end(self.build_id, self.job)
        except Exception as exc:
            log.warning("job %s: live log not closed: %s", self.job, exc)
