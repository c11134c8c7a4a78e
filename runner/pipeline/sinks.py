"""Sinks for a local run: the summary built from events, the run directory, and the `--json` printer.

`SummaryBuilder` turns the event stream into `summary.json`, so the summary is the same whoever runs
the engine (`runner exec` or a worker). `RunDirWriter` writes `logs/<job>.log` live and, at the end,
`summary.json`, the merged `junit.xml` and `report.html`; `JsonPrinter` is `--json`. The live
terminal printer is a CLI concern and lives in `runner.commands.console`.
Every sink here is thread-safe: the engine emits from one thread per running job.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from runner.pipeline.events import (
    ArtifactStored,
    Event,
    JobFinished,
    JobStarted,
    LogLine,
    PhaseFinished,
    PipelineFinished,
    PipelineStarted,
    StepFinished,
    StepStarted,
    TestsCollected,
)

TEST_KEYS = ("total", "passed", "failed", "error", "skipped", "flaky")


def log_filename(job: str) -> str:
    """`logs/<job>.log`, relative to the run directory; `/` in a job name cannot make a subdirectory."""
    safe = job.replace("/", "_").replace("\0", "_")
    if safe.startswith("."):
        safe = "_" + safe[1:]
    return f"logs/{safe}.log"


def _tests(counts: Mapping[str, int] | None = None) -> dict[str, int]:
    counts = counts or {}
    return {key: int(counts.get(key, 0)) for key in TEST_KEYS}


class _Job:
    """What the builder knows about one job so far (its last attempt's steps, tests and artifacts)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.status: str | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.duration = 0.0
        self.attempts = 0
        self.reason = ""
        self.steps: dict[int, dict[str, Any]] = {}
        self.phases: list[dict[str, Any]] = []
        self.tests: dict[str, int] = _tests()
        self.cases: list[Any] = []
        self.artifacts: dict[str, int] = {}


class SummaryBuilder:
    """A sink that keeps what `summary.json` needs; `summary()` may be called at any time."""

    def __init__(
        self, *, repo: str = "", git: Mapping[str, str] | None = None, allow_failure: Mapping[str, bool] = {}
    ) -> None:
        self.repo = repo
        self.git = {"branch": (git or {}).get("branch", ""), "sha": (git or {}).get("sha", "")}
        self.allow_failure = dict(allow_failure)
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.status: str | None = None
        self.duration: float | None = None

    def _job(self, name: str) -> _Job:
        if name not in self._jobs:
            self._jobs[name] = _Job(name)
        return self._jobs[name]

    def emit(self, event: Event) -> None:
        with self._lock:
            self._apply(event)

    def _apply(self, event: Event) -> None:
        if isinstance(event, PipelineStarted):
            self.started_at = event.time
            for name in event.jobs:
                self._job(name)
        elif isinstance(event, PipelineFinished):
            self.status, self.duration, self.finished_at = event.status, event.duration, event.time
        elif isinstance(event, JobStarted):
            job = self._job(event.job)
            if job.started_at is None:
                job.started_at = event.time
            if event.attempt > job.attempts and job.attempts:  # a retry: report the last attempt
                job.steps, job.tests, job.cases, job.artifacts = {}, _tests(), [], {}
            job.attempts = max(job.attempts, event.attempt)
            job.status = "running"
        elif isinstance(event, PhaseFinished):
            self._job(event.job).phases.append(
                {"phase": event.phase, "duration": event.duration, "detail": event.detail}
            )
        elif isinstance(event, StepStarted):
            self._job(event.job).steps[event.index] = {
                "name": event.step,
                "status": "running",
                "exit_code": None,
                "reason": "",
                "started_at": event.time,
                "duration": 0.0,
                "cpu_time": 0.0,
                "peak_memory": 0,
            }
        elif isinstance(event, StepFinished):
            step = self._job(event.job).steps.setdefault(event.index, {"started_at": None})
            step.update(
                name=event.step,
                status=event.status,
                exit_code=event.exit_code,
                reason=event.reason,
                duration=event.duration,
                cpu_time=event.cpu_time,
                peak_memory=event.peak_memory,
            )
        elif isinstance(event, TestsCollected):
            job = self._job(event.job)
            job.tests, job.cases = _tests(event.counts), list(event.cases)
        elif isinstance(event, ArtifactStored):
            self._job(event.job).artifacts[event.path] = event.size
        elif isinstance(event, JobFinished):
            job = self._job(event.job)
            job.status, job.duration, job.reason = event.status, event.duration, event.reason
            job.finished_at = event.time
            job.attempts = max(job.attempts, event.attempt if job.started_at is not None else 0)

    def cases(self) -> list[Any]:
        with self._lock:
            return [case for job in self._jobs.values() for case in job.cases]

    def summary(self, status: str | None = None) -> dict[str, Any]:
        """The summary.json document; `status` stands in when the pipeline never reported its end."""
        with self._lock:
            now = time.time()
            final = self.status or status or "error"
            started = self.started_at if self.started_at is not None else now
            finished = self.finished_at if self.finished_at is not None else now
            jobs = [self._job_summary(job, final, finished) for job in self._jobs.values()]
            totals = _tests({key: sum(job["tests"][key] for job in jobs) for key in TEST_KEYS})
            return {
                "status": final,
                "started_at": started,
                "finished_at": finished,
                "duration": self.duration if self.duration is not None else max(0.0, finished - started),
                "repo": self.repo,
                "git": dict(self.git),
                "jobs": jobs,
                "tests": totals,
            }

    def _job_summary(self, job: _Job, pipeline_status: str, now: float) -> dict[str, Any]:
        status, reason, duration = job.status, job.reason, job.duration
        if status in (None, "queued", "running"):  # the run ended before this job did
            status = "canceled" if pipeline_status == "canceled" else "error"
            reason = reason or ("canceled" if status == "canceled" else "the run ended before this job did")
            if job.started_at is not None:
                duration = max(0.0, now - job.started_at)
        steps = []
        for index in sorted(job.steps):
            step = dict(job.steps[index])
            if step.get("status") == "running":
                step.update(status="canceled", reason="canceled")
            steps.append(step)
        return {
            "name": job.name,
            "status": status,
            "allow_failure": bool(self.allow_failure.get(job.name, False)),
            "started_at": job.started_at,
            "duration": duration,
            "attempts": job.attempts,
            "reason": reason,
            "steps": steps,
            "phases": list(job.phases),
            "tests": dict(job.tests),
            "artifacts": [{"path": path, "size": size} for path, size in job.artifacts.items()],
            "log": log_filename(job.name),
        }


def required_jobs_passed(summary: Mapping[str, Any]) -> bool:
    """True when the run succeeded: no required job failed, errored or was canceled.

    Jobs with `allow_failure` do not count; a job skipped by its `if:` is not a failure.
    """
    if summary.get("status") in ("canceled", "error"):
        return False
    return all(
        job["status"] in ("passed", "skipped") for job in summary["jobs"] if not job.get("allow_failure")
    )


_clock_second: list[tuple[int, str]] = [(-1, "")]  # the last second formatted: logs ask per line


def _clock(stamp: float) -> str:
    second = int(stamp)
    cached, text = _clock_second[0]
    if cached != second:
        text = time.strftime("%H:%M:%S", time.localtime(second))
        _clock_second[0] = (second, text)
    return f"{text}.{int(stamp % 1 * 1000):03d}"


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


class RunDirWriter:
    """Writes a run directory: live `logs/<job>.log`, then `summary.json`, `junit.xml`, `report.html`."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        (self.out_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()
        self._finished = False  # events arriving after `finish` (an abandoned run) are dropped
        self._dirty: set[str] = set()  # jobs whose log has lines not yet flushed
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    def _write(self, job: str, stamp: float, text: str) -> None:
        handle = self._files.get(job)
        if handle is None:
            handle = open(self.out_dir / log_filename(job), "w", encoding="utf-8", errors="replace")  # noqa: SIM115
            self._files[job] = handle
        handle.write(f"{_clock(stamp)} {text}\n")
        self._dirty.add(job)
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, name="log-flusher", daemon=True)
            self._flusher.start()

    def _flush_loop(self) -> None:
        """Logs reach the disk within 0.1 s of a line (for `tail -f`), without a flush per line."""
        while not self._stop.wait(0.1):
            with self._lock:
                for job in self._dirty:
                    handle = self._files.get(job)
                    if handle is not None:
                        handle.flush()
                self._dirty.clear()

    def emit(self, event: Event) -> None:
        line = _log_text(event)
        job = getattr(event, "job", None)
        if line is None or job is None:
            return
        with self._lock:
            if not self._finished:
                self._write(job, event.time, line)
                if isinstance(event, JobFinished):  # a finished job's log is whole on disk at once
                    self._files[job].flush()

    def finish(self, summary: Mapping[str, Any], cases: list[Any]) -> list[str]:
        """Writes the end-of-run files; returns one-line problems (the run directory is still usable)."""
        problems: list[str] = []
        with self._lock:
            for job in summary.get("jobs", []):
                if job["name"] not in self._files:  # skipped before it started: say why in its log
                    why = f": {job['reason']}" if job.get("reason") else ""
                    self._write(job["name"], time.time(), f"[runner] job {job['status']}{why}")
            for handle in self._files.values():
                handle.close()
            self._files.clear()
            self._dirty.clear()
            self._finished = True
        self._stop.set()
        tmp = self.out_dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.out_dir / "summary.json")
        try:
            from runner.reports import render_report, write_merged_junit

            write_merged_junit(cases, self.out_dir / "junit.xml")
            render_report(summary, cases, self.out_dir / "report.html")
        except Exception as exc:  # a report problem must not lose the run's results
            problems.append(f"could not write the report: {exc}")
        return problems


def _log_text(event: Event) -> str | None:
    """The line a job's log file gets for an event, or None."""
    if isinstance(event, LogLine):
        stream = event.stream
        tag = "" if stream == "stdout" else f"[{stream.removeprefix('service:')}] "
        return tag + event.text
    if isinstance(event, JobStarted):
        return f"[runner] job started (attempt {event.attempt})"
    if isinstance(event, PhaseFinished):
        detail = f": {event.detail}" if event.detail else ""
        return f"[runner] {event.phase}{detail} ({_fmt(event.duration)})"
    if isinstance(event, StepStarted):
        return f"==> step {event.index + 1}: {event.step}"
    if isinstance(event, StepFinished):
        code = f", exit {event.exit_code}" if event.exit_code is not None else ""
        why = f", {event.reason}" if event.reason not in ("exited", "") else ""
        return f"<== step {event.index + 1}: {event.step} {event.status}{code}{why} in {_fmt(event.duration)}"
    if isinstance(event, TestsCollected):
        counts = _tests(event.counts)
        return "[runner] tests: " + ", ".join(f"{counts[key]} {key}" for key in TEST_KEYS[1:])
    if isinstance(event, ArtifactStored):
        return f"[runner] artifact {event.path} ({event.size} bytes)"
    if isinstance(event, JobFinished):
        why = f": {event.reason}" if event.reason else ""
        return f"[runner] job {event.status} in {_fmt(event.duration)}{why}"
    return None


class JsonPrinter:
    """`--json`: the final summary on stdout and nothing else there."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def emit(self, event: Event) -> None:
        return None

    def finish(self, summary: Mapping[str, Any]) -> None:
        import sys

        stream = self.stream or sys.stdout
        stream.write(json.dumps(summary, indent=2) + "\n")
        stream.flush()
