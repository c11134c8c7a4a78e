"""The worker's sink: a job's events to the build store, the live log stream and log storage.

Every log line goes to log storage, then to the Redis stream (`runner.logs.LogRecorder`), so the page
shows it live and line numbers agree between both; steps, tests and artifacts go to the store as they
happen. A failing backend never fails the job: the engine treats a raising sink as the runner's own
error, so errors stop here (storage still holds what the stream missed while Redis restarted).
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
        self._lock = threading.Lock()  # lines of one job stay in order across the engine's threads
        self.first_line_at: float | None = None
        self.started = time.monotonic()  # the job's start for `first_line`: the worker claimed it
        self._stream_down = False
        self.phases: dict[str, float] = {}

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
        elif isinstance(event, LogLine) and event.stream in ("stdout", "stderr"):
            # the wait a user sees: from the claim to the first line the job itself printed
            self.phases.setdefault("first_line", round(time.monotonic() - self.started, 4))
        elif isinstance(event, PhaseFinished):  # stored with the job's end: one write less per phase
            self.phases[event.phase] = round(self.phases.get(event.phase, 0.0) + event.duration, 4)
        elif isinstance(event, ArtifactStored):
            self._artifact(event)
        elif isinstance(event, JobFinished):
            self.close()

    def line(self, text: str) -> None:
        """A line of the runner's own (not from the engine)."""
        self._line({"t": time.time(), "step": None, "stream": "runner", "text": text})

    def _line(self, record: dict[str, object]) -> None:
        if self.first_line_at is None:
            self.first_line_at = time.time()
        with self._lock:
            try:
                self.ctx.recorder.line(self.build_id, self.job, record)
                self._stream_down = False
            except Exception as exc:  # storage has the line unless storage itself failed
                if not self._stream_down:
                    log.warning("job %s: live log unavailable: %s", self.job, exc)
                self._stream_down = True

    def _artifact(self, event: ArtifactStored) -> None:
        if self.artifacts_root is None:
            return
        source = self.artifacts_root / job_dirname(self.job) / event.path
        self.ctx.storage.put_artifact(self.build_id, self.job, event.path, source)
        self.ctx.store.artifact_stored(self.job_id, event.path, event.size)

    def close(self) -> None:
        """Mark the log complete and the live stream ended."""
        with self._lock:
            try:
                self.ctx.recorder.end(self.build_id, self.job)
            except Exception as exc:
                log.warning("job %s: live log not closed: %s", self.job, exc)
