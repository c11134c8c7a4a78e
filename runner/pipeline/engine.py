"""The pipeline executor: runs a job graph with bounded parallelism, retries, timeouts and cancellation.

One scheduling loop (in the caller's thread) starts jobs whose needs have passed on a thread pool,
up to `concurrency` at a time, settles skipped jobs, and every 0.1 s checks the cancel event and
the jobs' deadlines, stopping the containers of the jobs concerned. Each job runs its attempts in
its pool thread (`JobAttempt`). `runner exec` and the workers both call `run_pipeline`.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from runner.config.spec import JobSpec, PipelineSpec
from runner.pipeline.control import JobControl
from runner.pipeline.events import (
    Event,
    JobFinished,
    JobStarted,
    JobStatus,
    LogLine,
    PipelineFinished,
    PipelineStarted,
    Sink,
)
from runner.pipeline.graph import Schedule, select
from runner.pipeline.job import JobAttempt
from runner.pipeline.results import JobResult, PipelineResult, RunOptions

TICK = 0.1  # seconds between two looks at the cancel event and the deadlines


def run_job(job: JobSpec, options: RunOptions, sink: Sink, control: JobControl) -> JobResult:
    """Run a job's attempts (1 + `retry` at most, until one passes); emits its start and end events."""
    started = time.monotonic()
    result = JobResult(job.name, "error", allow_failure=job.allow_failure, started_at=time.time())
    earlier: list[list[Any]] = []  # failed attempts' test cases: a test they failed that passes now is flaky
    for attempt in range(1, job.retry + 2):
        control.begin_attempt()
        sink.emit(JobStarted(job.name, attempt))
        outcome = JobAttempt(job, options, sink, control, attempt, earlier_cases=earlier).run()
        result.status, result.reason, result.attempts = outcome.status, outcome.reason, attempt
        result.steps, result.tests, result.cases = outcome.steps, outcome.tests, outcome.cases
        result.artifacts = outcome.artifacts
        if outcome.status != "failed" or attempt > job.retry or control.stopped == "canceled":
            break
        earlier.append(list(outcome.cases))
        sink.emit(LogLine(job.name, None, "runner", f"attempt {attempt} failed ({outcome.reason}); retrying"))
    result.duration = time.monotonic() - started
    result.finished_at = time.time()
    sink.emit(JobFinished(job.name, result.status, result.duration, result.attempts, result.reason))
    return result


def _emit(sink: Sink, event: Event) -> None:
    """An event from the scheduling loop itself: a failing sink must not stop the other jobs."""
    try:
        sink.emit(event)
    except Exception:
        pass


def _guarded(job: JobSpec, options: RunOptions, sink: Sink, control: JobControl) -> JobResult:
    """`run_job`, where even a failing sink or a bug becomes the job's `error`, never a crash."""
    try:
        return run_job(job, options, sink, control)
    except Exception as exc:
        reason = f"internal error: {type(exc).__name__}: {exc}"
        try:
            sink.emit(JobFinished(job.name, "error", 0.0, 1, reason))
        except Exception:
            pass
        return JobResult(job.name, "error", reason, job.allow_failure, attempts=1)


def run_pipeline(
    spec: PipelineSpec, options: RunOptions, sink: Sink, cancel: threading.Event | None = None
) -> PipelineResult:
    """Run the pipeline's jobs (or `options.only` and their needs); raises `PipelineError` before
    starting anything when the selection or the graph is invalid."""
    jobs = select(spec, options.only)
    cancel = cancel or threading.Event()
    started, started_at = time.monotonic(), time.time()
    schedule = Schedule(jobs)
    results: dict[str, JobResult] = {}
    controls: dict[str, JobControl] = {}
    running: dict[Future[JobResult], str] = {}
    canceled = False
    _emit(sink, PipelineStarted(tuple(job.name for job in jobs)))

    def settle(name: str, status: JobStatus, reason: str) -> None:
        schedule.finish(name, status, reason)
        results[name] = JobResult(
            name, status, reason, schedule.jobs[name].allow_failure, finished_at=time.time()
        )
        _emit(sink, JobFinished(name, status, 0.0, 0, reason))

    with ThreadPoolExecutor(max_workers=max(1, options.concurrency), thread_name_prefix="job") as pool:
        while True:
            progressed = False
            if cancel.is_set() and not canceled:
                canceled = True
                for control in controls.values():
                    control.stop("canceled")
                for name in schedule.queued():
                    settle(name, "canceled", "the pipeline was canceled")
            for control in controls.values():
                if control.stopped is None and control.expired():
                    control.stop("timeout")
            if not canceled:
                for name, reason in schedule.skips():
                    results[name] = JobResult(
                        name, "skipped", reason, schedule.jobs[name].allow_failure, finished_at=time.time()
                    )
                    _emit(sink, JobFinished(name, "skipped", 0.0, 0, reason))
                    progressed = True
                for job in schedule.runnable()[: max(0, options.concurrency - len(running))]:
                    schedule.start(job.name)
                    control = controls[job.name] = JobControl(job.timeout)
                    running[pool.submit(_guarded, job, options, sink, control)] = job.name
            if not running:
                if schedule.settled() or canceled:
                    break
                if not progressed:  # cannot happen with an acyclic graph; never spin forever
                    for name in schedule.queued():
                        settle(name, "error", "internal error: the job could not be scheduled")
                continue  # skips just settled may have made other jobs runnable or skipped
            done, _ = wait(running, timeout=TICK, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                controls.pop(name, None)
                result = future.result()
                results[name] = result
                schedule.finish(name, result.status, result.reason)
    status = schedule.pipeline_status(canceled)
    duration = time.monotonic() - started
    _emit(sink, PipelineFinished(status, duration))
    ordered = {job.name: results[job.name] for job in jobs if job.name in results}
    return PipelineResult(status, duration, started_at, time.time(), ordered)
