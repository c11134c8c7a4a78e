"""The report's view model: a run's summary.json and its test cases turned into what the page shows.

Everything here is pure data and defensive: summary.json may come from an older runner, a crashed run
or a hand edit, so a missing key or a value of the wrong type yields an empty field, never an exception.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from runner.reports.model import FAILING, TestCase, counts
from runner.units import format_bytes

RUN_STATUSES: Final = frozenset({"passed", "failed", "canceled", "error", "running", "queued"})
JOB_STATUSES: Final = frozenset({"queued", "running", "passed", "failed", "skipped", "canceled", "error"})
SLOWEST: Final = 10
#: Tests listed in the "all tests" table, failing ones first.
MAX_LISTED_TESTS: Final = 2000
#: Failing and flaky tests shown with their full message, trace and output; the rest are only listed.
MAX_DETAILED: Final = 200


@dataclass(slots=True)
class Bar:
    """One bar on the timeline, in percent of the whole run's span."""

    label: str
    status: str
    left: float
    width: float
    title: str


@dataclass(slots=True)
class StepView:
    name: str
    status: str
    duration: str
    exit_code: str
    reason: str
    cpu_time: str
    peak_memory: str


@dataclass(slots=True)
class JobView:
    name: str
    status: str
    allow_failure: bool
    duration: str
    attempts: int
    reason: str
    log: str
    steps: list[StepView]
    phases: list[str]
    artifacts: list[tuple[str, str]]
    tests: dict[str, int]
    bar: Bar | None
    step_bars: list[Bar] = field(default_factory=list)


@dataclass(slots=True)
class SuiteView:
    job: str
    name: str
    counts: dict[str, int]
    time: str


@dataclass(slots=True)
class ReportView:
    """Everything ``report.html.j2`` reads."""

    status: str
    title: str
    branch: str
    sha: str
    started: str
    duration: str
    totals: dict[str, int]
    jobs: list[JobView]
    failed_jobs: list[JobView]
    failures: list[TestCase]
    hidden_failures: int
    flaky: list[TestCase]
    hidden_flaky: int
    slowest: list[TestCase]
    suites: list[SuiteView]
    tests: list[TestCase]
    hidden_tests: int
    ticks: list[tuple[float, str]]
    multi_job: bool
    warnings: list[str] = field(default_factory=list)


def build_view(summary: Mapping[str, Any], cases: Sequence[TestCase]) -> ReportView:
    """The view of one run; ``summary`` has the shape `runner exec` writes to summary.json."""
    summary = summary if isinstance(summary, Mapping) else {}
    git = _mapping(summary.get("git"))
    raw_jobs = [job for job in _list(summary.get("jobs")) if isinstance(job, Mapping)]
    origin, span = _span(summary, raw_jobs)
    jobs = [_job(job, cases, origin, span) for job in raw_jobs]
    totals = counts(cases) if cases else _counts(summary.get("tests"))
    status = _text(summary.get("status")) or ("failed" if totals["failed"] + totals["error"] else "passed")
    ordered = sorted(cases, key=_severity)
    failures = [case for case in cases if case.status in FAILING]
    flaky = [case for case in cases if case.status == "flaky"]
    job_names = {case.job for case in cases} | {job.name for job in jobs}
    return ReportView(
        status=status if status in RUN_STATUSES else "error",
        title=_text(summary.get("repo")) or "runner",
        branch=_text(git.get("branch")) or _text(git.get("tag")),
        sha=_text(git.get("sha"))[:12],
        started=format_time(_number(summary.get("started_at"))),
        duration=format_duration(_number(summary.get("duration"))),
        totals=totals,
        jobs=jobs,
        failed_jobs=[job for job in jobs if job.status in ("failed", "error")],  # a cancel is no failure
        failures=failures[:MAX_DETAILED],
        hidden_failures=max(0, len(failures) - MAX_DETAILED),
        flaky=flaky[:MAX_DETAILED],
        hidden_flaky=max(0, len(flaky) - MAX_DETAILED),
        slowest=sorted((c for c in cases if c.time > 0), key=lambda c: -c.time)[:SLOWEST],
        suites=_suites(cases),
        tests=ordered[:MAX_LISTED_TESTS],
        hidden_tests=max(0, len(ordered) - MAX_LISTED_TESTS),
        ticks=[(pct, format_duration(span * pct / 100)) for pct in (0, 25, 50, 75, 100)] if span else [],
        multi_job=len(job_names) > 1,
        warnings=_warnings(summary, raw_jobs),
    )


def _warnings(summary: Mapping[str, Any], jobs: list[Mapping[str, Any]]) -> list[str]:
    """Optional ``warnings`` lists (of the run and of each job), such as `collect`'s skipped files."""
    found = [_text(w) for w in _list(summary.get("warnings")) if _text(w)]
    for job in jobs:
        name = _text(job.get("name"))
        found.extend(f"{name}: {_text(w)}" for w in _list(job.get("warnings")) if _text(w))
    return found


def _job(job: Mapping[str, Any], cases: Sequence[TestCase], origin: float | None, span: float) -> JobView:
    name = _text(job.get("name")) or "(unnamed job)"
    status = _text(job.get("status"))
    status = status if status in JOB_STATUSES else "error"
    started = _number(job.get("started_at"))
    duration = _number(job.get("duration")) or 0.0
    steps, step_bars = [], []
    cursor = started
    for raw in (s for s in _list(job.get("steps")) if isinstance(s, Mapping)):
        step = _step(raw)
        steps.append(step)
        step_start = _number(raw.get("started_at")) or cursor
        step_duration = _number(raw.get("duration")) or 0.0
        bar = _bar(step.name, step.status, step_start, step_duration, origin, span)
        if bar:
            step_bars.append(bar)
        if step_start is not None:
            cursor = step_start + step_duration
    mine = [case for case in cases if case.job == name]
    log = _text(job.get("log"))
    return JobView(
        name=name,
        status=status,
        allow_failure=bool(job.get("allow_failure")),
        duration=format_duration(duration) if started is not None or duration else "",
        attempts=_int(job.get("attempts"), 1),
        reason=_text(job.get("reason")),
        log=log if log and not log.startswith(("/", "\\")) and ".." not in log.split("/") else "",
        steps=steps,
        phases=[_phase(p) for p in _list(job.get("phases")) if isinstance(p, Mapping)],
        artifacts=[
            (_text(a.get("path")), format_bytes(_number(a.get("size"))))
            for a in _list(job.get("artifacts"))
            if isinstance(a, Mapping) and _text(a.get("path"))
        ],
        tests=counts(mine) if mine else _counts(job.get("tests")),
        bar=_bar(name, status, started, duration, origin, span),
        step_bars=step_bars,
    )


def _step(step: Mapping[str, Any]) -> StepView:
    exit_code = step.get("exit_code")
    return StepView(
        name=_text(step.get("name")) or "(unnamed step)",
        status=_text(step.get("status")) or "queued",
        duration=format_duration(_number(step.get("duration"))),
        exit_code="" if exit_code is None or isinstance(exit_code, bool) else _text(exit_code),
        reason=_text(step.get("reason")),
        cpu_time=format_duration(_number(step.get("cpu_time"))),
        peak_memory=format_bytes(_number(step.get("peak_memory"))),
    )


def _phase(phase: Mapping[str, Any]) -> str:
    detail = _text(phase.get("detail"))
    text = f"{_text(phase.get('phase')) or 'phase'} {format_duration(_number(phase.get('duration')))}"
    return f"{text} ({detail})" if detail else text


def _span(summary: Mapping[str, Any], jobs: list[Mapping[str, Any]]) -> tuple[float | None, float]:
    """The timeline's origin (run start) and length in seconds, from whatever times are present."""
    starts: list[float] = []
    ends: list[float] = []
    for job in jobs:
        start = _number(job.get("started_at"))
        if start is not None:
            starts.append(start)
            ends.append(start + (_number(job.get("duration")) or 0.0))
    origin = _number(summary.get("started_at"))
    origin = min([origin, *starts]) if origin is not None else (min(starts) if starts else None)
    if origin is None:
        return None, 0.0
    finished = _number(summary.get("finished_at"))
    end = max([e for e in (*ends, finished) if e is not None], default=origin)
    end = max(end, origin + (_number(summary.get("duration")) or 0.0))
    return origin, max(end - origin, 0.0)


def _bar(
    label: str, status: str, start: float | None, duration: float, origin: float | None, span: float
) -> Bar | None:
    if start is None or origin is None or span <= 0:
        return None
    left = min(max((start - origin) / span * 100, 0.0), 100.0)
    width = min(max(duration / span * 100, 0.6), max(100.0 - left, 0.6))
    title = f"{label} · {format_duration(duration)} · {status}"
    return Bar(label=label, status=status, left=round(left, 3), width=round(width, 3), title=title)


def _suites(cases: Sequence[TestCase]) -> list[SuiteView]:
    groups: dict[tuple[str, str], list[TestCase]] = defaultdict(list)
    for case in cases:
        groups[(case.job, case.suite)].append(case)
    return [
        SuiteView(
            job=job,
            name=suite or "(no suite)",
            counts=counts(group),
            time=format_duration(sum(c.time for c in group)),
        )
        for (job, suite), group in sorted(groups.items())
    ]


def _severity(case: TestCase) -> tuple[int, str, str, str]:
    rank = {"error": 0, "failed": 0, "flaky": 1, "skipped": 3}.get(case.status, 2)
    return rank, case.job, case.suite, case.name


def format_duration(seconds: float | None) -> str:
    """``0.123`` → ``0.12s``; ``75`` → ``1m 15s``; ``3725`` → ``1h 02m``; None → ``""``."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f}s" if seconds < 1 else f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_time(stamp: float | None) -> str:
    """A POSIX time as ``2026-11-28 08:52:20 UTC``; None → ``""``."""
    if stamp is None:
        return ""
    try:
        return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return ""


def _counts(value: Any) -> dict[str, int]:
    source = _mapping(value)
    keys = ("total", "passed", "failed", "error", "skipped", "flaky")
    return {key: _int(source.get(key), 0) for key in keys}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _text(value: Any) -> str:
    if value is None or isinstance(value, Mapping | list):
        return ""
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _int(value: Any, default: int) -> int:
    number = _number(value)
    return int(number) if number is not None else default
