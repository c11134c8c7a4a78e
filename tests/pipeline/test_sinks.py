"""Sinks fed a synthetic event sequence: the exact summary.json, the logs, the console and --json."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

from runner.commands.console import ConsolePrinter, format_duration, job_colour
from runner.pipeline.events import (
    ArtifactStored,
    Event,
    FanOut,
    JobFinished,
    JobStarted,
    LogLine,
    PhaseFinished,
    PipelineFinished,
    PipelineStarted,
    StepFinished,
    StepStarted,
)
from runner.pipeline.events import (
    TestsCollected as CollectedTests,
)
from runner.pipeline.sinks import (
    JsonPrinter,
    RunDirWriter,
    SummaryBuilder,
    log_filename,
    required_jobs_passed,
)

T0 = 1_732_780_000.0
BUILD, TEST = "build", "test (py: 3.12)"
LINT, DEPLOY = "lint", "deploy"


def events() -> list[Event]:
    """A run: build passes (with an artifact), test fails once then passes, lint fails (allowed),
    deploy is skipped."""
    return [
        PipelineStarted((BUILD, TEST, LINT, DEPLOY), time=T0),
        JobStarted(BUILD, 1, time=T0 + 0.1),
        PhaseFinished(BUILD, "image", 0.01, "host", time=T0 + 0.11),
        StepStarted(BUILD, "compile", 0, time=T0 + 0.2),
        LogLine(BUILD, "compile", "stdout", "building [not markup] 100%", time=T0 + 0.3),
        LogLine(BUILD, "compile", "stderr", "a warning", time=T0 + 0.31),
        StepFinished(BUILD, "compile", 0, "passed", 0, "exited", 0.5, 0.4, 12_345_678, time=T0 + 0.7),
        ArtifactStored(BUILD, "dist/x.whl", 123, time=T0 + 0.8),
        JobFinished(BUILD, "passed", 0.75, 1, "", time=T0 + 0.85),
        JobStarted(TEST, 1, time=T0 + 1.0),
        StepStarted(TEST, "unit tests", 0, time=T0 + 1.1),
        StepFinished(TEST, "unit tests", 0, "failed", 1, "exited", 0.2, 0.1, 1000, time=T0 + 1.3),
        CollectedTests(TEST, {"total": 2, "passed": 1, "failed": 1}, ("case-a1", "case-b1"), time=T0 + 1.35),
        LogLine(TEST, None, "runner", "attempt 1 failed (step unit tests); retrying", time=T0 + 1.4),
        JobStarted(TEST, 2, time=T0 + 1.5),
        StepStarted(TEST, "unit tests", 0, time=T0 + 1.6),
        LogLine(TEST, "unit tests", "service:cache", "Ready to accept connections", time=T0 + 1.65),
        StepFinished(TEST, "unit tests", 0, "passed", 0, "exited", 0.3, 0.2, 2000, time=T0 + 1.9),
        StepFinished(TEST, "always runs", 1, "passed", 0, "exited", 0.1, 0.0, 0, time=T0 + 2.0),
        CollectedTests(
            TEST, {"total": 2, "passed": 1, "failed": 0, "flaky": 1}, ("case-a2", "case-b2"), time=T0 + 2.05
        ),
        JobFinished(TEST, "passed", 1.1, 2, "", time=T0 + 2.1),
        JobStarted(LINT, 1, time=T0 + 0.1),
        StepStarted(LINT, "ruff", 0, time=T0 + 0.15),
        StepFinished(LINT, "ruff", 0, "failed", None, "timeout", 5.0, 4.9, 0, time=T0 + 5.2),
        StepFinished(LINT, "later", 1, "skipped", None, "skipped", 0.0, 0.0, 0, time=T0 + 5.2),
        JobFinished(LINT, "failed", 5.1, 1, "step ruff timed out", time=T0 + 5.25),
        JobFinished(DEPLOY, "skipped", 0.0, 0, "needs lint, which failed", time=T0 + 5.3),
        PipelineFinished("passed", 5.5, time=T0 + 5.5),
    ]


EXPECTED: dict[str, Any] = {
    "status": "passed",
    "started_at": T0,
    "finished_at": T0 + 5.5,
    "duration": 5.5,
    "repo": "hello",
    "git": {"branch": "main", "sha": "abc123"},
    "jobs": [
        {
            "name": BUILD,
            "status": "passed",
            "allow_failure": False,
            "started_at": T0 + 0.1,
            "duration": 0.75,
            "attempts": 1,
            "reason": "",
            "steps": [
                {
                    "name": "compile",
                    "status": "passed",
                    "exit_code": 0,
                    "reason": "exited",
                    "started_at": T0 + 0.2,
                    "duration": 0.5,
                    "cpu_time": 0.4,
                    "peak_memory": 12_345_678,
                }
            ],
            "phases": [{"phase": "image", "duration": 0.01, "detail": "host"}],
            "tests": {"total": 0, "passed": 0, "failed": 0, "error": 0, "skipped": 0, "flaky": 0},
            "artifacts": [{"path": "dist/x.whl", "size": 123}],
            "log": "logs/build.log",
        },
        {
            "name": TEST,
            "status": "passed",
            "allow_failure": False,
            "started_at": T0 + 1.0,
            "duration": 1.1,
            "attempts": 2,
            "reason": "",
            "steps": [
                {
                    "name": "unit tests",
                    "status": "passed",
                    "exit_code": 0,
                    "reason": "exited",
                    "started_at": T0 + 1.6,
                    "duration": 0.3,
                    "cpu_time": 0.2,
                    "peak_memory": 2000,
                },
                {
                    "name": "always runs",
                    "status": "passed",
                    "exit_code": 0,
                    "reason": "exited",
                    "started_at": None,
                    "duration": 0.1,
                    "cpu_time": 0.0,
                    "peak_memory": 0,
                },
            ],
            "phases": [],
            "tests": {"total": 2, "passed": 1, "failed": 0, "error": 0, "skipped": 0, "flaky": 1},
            "artifacts": [],
            "log": "logs/test (py: 3.12).log",
        },
        {
            "name": LINT,
            "status": "failed",
            "allow_failure": True,
            "started_at": T0 + 0.1,
            "duration": 5.1,
            "attempts": 1,
            "reason": "step ruff timed out",
            "steps": [
                {
                    "name": "ruff",
                    "status": "failed",
                    "exit_code": None,
                    "reason": "timeout",
                    "started_at": T0 + 0.15,
                    "duration": 5.0,
                    "cpu_time": 4.9,
                    "peak_memory": 0,
                },
                {
                    "name": "later",
                    "status": "skipped",
                    "exit_code": None,
                    "reason": "skipped",
                    "started_at": None,
                    "duration": 0.0,
                    "cpu_time": 0.0,
                    "peak_memory": 0,
                },
            ],
            "phases": [],
            "tests": {"total": 0, "passed": 0, "failed": 0, "error": 0, "skipped": 0, "flaky": 0},
            "artifacts": [],
            "log": "logs/lint.log",
        },
        {
            "name": DEPLOY,
            "status": "skipped",
            "allow_failure": False,
            "started_at": None,
            "duration": 0.0,
            "attempts": 0,
            "reason": "needs lint, which failed",
            "steps": [],
            "phases": [],
            "tests": {"total": 0, "passed": 0, "failed": 0, "error": 0, "skipped": 0, "flaky": 0},
            "artifacts": [],
            "log": "logs/deploy.log",
        },
    ],
    "tests": {"total": 2, "passed": 1, "failed": 0, "error": 0, "skipped": 0, "flaky": 1},
}


def builder() -> SummaryBuilder:
    return SummaryBuilder(
        repo="hello",
        git={"branch": "main", "sha": "abc123", "tag": "", "event": "exec"},
        allow_failure={LINT: True},
    )


def test_summary_is_exactly_the_schema() -> None:
    summary = builder()
    for event in events():
        summary.emit(event)
    assert summary.summary() == EXPECTED
    assert summary.cases() == ["case-a2", "case-b2"]  # the last attempt's cases
    assert required_jobs_passed(summary.summary())
    json.dumps(summary.summary())  # serialisable as it is


def test_summary_from_threads_is_the_same() -> None:
    """Jobs' events arrive from several threads; per-job order is what matters."""
    summary = builder()
    all_events = events()
    summary.emit(all_events[0])
    per_job: dict[str, list[Event]] = {}
    for event in all_events[1:-1]:
        per_job.setdefault(event.job, []).append(event)  # type: ignore[union-attr]
    threads = [
        threading.Thread(target=lambda evs=evs: [summary.emit(e) for e in evs]) for evs in per_job.values()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summary.emit(all_events[-1])
    assert summary.summary() == EXPECTED


def test_interrupted_run_reports_canceled_jobs_and_steps() -> None:
    summary = builder()
    for event in events()[:4]:  # build's first step is running when the run is interrupted
        summary.emit(event)
    got = summary.summary(status="canceled")
    assert got["status"] == "canceled"
    build = got["jobs"][0]
    assert build["status"] == "canceled" and build["reason"] == "canceled"
    assert build["steps"][0]["status"] == "canceled"
    assert [job["status"] for job in got["jobs"][1:]] == ["canceled"] * 3
    assert not required_jobs_passed(got)


def test_required_jobs_passed() -> None:
    def run(*jobs: tuple[str, bool], status: str = "failed") -> dict[str, Any]:
        return {"status": status, "jobs": [{"status": s, "allow_failure": a} for s, a in jobs]}

    assert required_jobs_passed(run(("passed", False), ("failed", True), ("skipped", False)))
    assert not required_jobs_passed(run(("passed", False), ("failed", False)))
    assert not required_jobs_passed(run(("error", False)))
    assert not required_jobs_passed(run(("passed", False), status="canceled"))


def test_log_filename() -> None:
    assert log_filename("test (py: 3.12)") == "logs/test (py: 3.12).log"
    assert log_filename("a/b") == "logs/a_b.log"
    assert log_filename("..") == "logs/_..log"


def test_run_dir_writer(tmp_path: Path) -> None:
    summary = builder()
    writer = RunDirWriter(tmp_path / "run")
    sink = FanOut(summary, writer)
    for event in events():
        sink.emit(event)
    # Logs are written live: the file is complete before the end of the run is processed.
    build_log = (tmp_path / "run" / "logs" / "build.log").read_text()
    problems = writer.finish(summary.summary(), [])
    assert problems == []
    assert (tmp_path / "run" / "junit.xml").is_file()
    assert "test (py: 3.12)" in (tmp_path / "run" / "report.html").read_text()
    data = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert data == EXPECTED

    def strip(text: str) -> list[str]:  # drop the local-time clock
        lines = text.splitlines()
        assert all(len(line) > 13 and line[2] == ":" and line[8] == "." for line in lines)
        return [line[13:] for line in lines]

    assert strip(build_log) == [
        "[runner] job started (attempt 1)",
        "[runner] image: host (0.01s)",
        "==> step 1: compile",
        "building [not markup] 100%",
        "[stderr] a warning",
        "<== step 1: compile passed, exit 0 in 0.50s",
        "[runner] artifact dist/x.whl (123 bytes)",
        "[runner] job passed in 0.75s",
    ]
    test_log = strip((tmp_path / "run" / "logs" / "test (py: 3.12).log").read_text())
    assert "[runner] attempt 1 failed (step unit tests); retrying" in test_log
    assert "[cache] Ready to accept connections" in test_log
    assert test_log[-1] == "[runner] job passed in 1.10s"
    lint_log = strip((tmp_path / "run" / "logs" / "lint.log").read_text())
    assert "<== step 1: ruff failed, timeout in 5.00s" in lint_log
    assert strip((tmp_path / "run" / "logs" / "deploy.log").read_text()) == [
        "[runner] job skipped in 0.00s: needs lint, which failed"
    ]


def test_run_dir_writer_gives_unstarted_jobs_a_log(tmp_path: Path) -> None:
    writer = RunDirWriter(tmp_path)
    summary = {"jobs": [{"name": "never", "status": "canceled", "reason": "canceled"}]}
    writer.finish(summary, [])
    assert (tmp_path / "logs" / "never.log").read_text().endswith("[runner] job canceled: canceled\n")


def test_json_printer_prints_only_the_summary() -> None:
    out = io.StringIO()
    printer = JsonPrinter(out)
    for event in events():
        printer.emit(event)
    assert out.getvalue() == ""
    printer.finish(EXPECTED)
    assert json.loads(out.getvalue()) == EXPECTED


def test_console_plain_output() -> None:
    out = io.StringIO()  # not a terminal: no colour codes
    printer = ConsolePrinter(out)
    for event in events():
        printer.emit(event)
    summary = builder()
    for event in events():
        summary.emit(event)
    printer.finish(summary.summary())
    text = out.getvalue()
    assert "\x1b[" not in text
    lines = text.splitlines()
    assert "[build] building [not markup] 100%" in lines
    assert "[build] ▶ compile" in lines
    assert "[build] ✓ compile (0.50s)" in lines
    assert "[test (py: 3.12)] ↻ retrying (attempt 2)" in lines
    assert "[test (py: 3.12)/cache] Ready to accept connections" in lines
    assert "[test (py: 3.12)] ✗ unit tests (exit 1, 0.20s)" in lines
    assert "[lint] ✗ ruff (timed out, 5.00s)" in lines
    assert "[lint] ○ later (skipped)" in lines
    assert "[deploy] ○ job skipped: needs lint, which failed" in lines
    assert "[test (py: 3.12)] tests: 1 passed, 1 failed" in lines
    assert "[test (py: 3.12)] tests: 1 passed, 1 flaky" in lines
    table = [line for line in lines if line.startswith(("build ", "lint ", "deploy ", "test "))]
    assert len(table) == 4
    assert "failed (allowed)" in table[2] and "1 passed, 0 failed" in table[1]
    assert lines[-1] == "✓ pipeline passed in 5.50s"


def test_console_colour_on_a_terminal_and_no_color(monkeypatch: Any) -> None:
    out = io.StringIO()
    printer = ConsolePrinter(out, color=True)
    printer.emit(LogLine(BUILD, "s", "stdout", "hello", time=time.time()))
    assert "\x1b[" in out.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    ConsolePrinter(out).emit(LogLine(BUILD, "s", "stdout", "hello", time=time.time()))
    assert out.getvalue() == "[build] hello\n"


def test_job_colour_is_stable() -> None:
    assert job_colour(TEST) == job_colour("test (py: 3.12)")
    assert len({job_colour(f"job{i}") for i in range(50)}) > 3


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.5, 12.34, 75, 3725)] == ["0.50s", "12.3s", "1m15s", "1h02m"]


def test_console_on_an_ascii_stream() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="strict", write_through=True)
    printer = ConsolePrinter(stream)
    printer.emit(StepStarted(BUILD, "büild", 0, time=T0))
    printer.emit(LogLine(BUILD, "s", "stdout", "naïve text", time=T0))
    summary = builder()
    for event in events():
        summary.emit(event)
    printer.finish(summary.summary())
    lines = raw.getvalue().decode("ascii").splitlines()
    assert lines[:2] == ["[build] > b?ild", "[build] na?ve text"]
    assert lines[-1] == "+ pipeline passed in 5.50s"


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_console_printing_into_a_closed_pipe_never_raises() -> None:
    printer = ConsolePrinter(ClosedPipe())
    for event in events():
        printer.emit(event)  # a console problem must not become the job's error
    printer.finish(EXPECTED)
