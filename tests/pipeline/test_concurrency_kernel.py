"""Parallel jobs up to the concurrency limit, and cancellation of a running pipeline."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pipeline_helpers import job, run

from runner.config.spec import ImageSpec, ServiceSpec
from runner.pipeline.events import Collector, StepFinished, StepStarted

pytestmark = pytest.mark.kernel


def max_overlap(sink: Collector) -> int:
    edges = [(e.time, 1) for e in sink.of(StepStarted)] + [(e.time, -1) for e in sink.of(StepFinished)]
    level = peak = 0
    for _, delta in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        level += delta
        peak = max(peak, level)
    return peak


def test_independent_jobs_run_in_parallel_up_to_the_limit(tmp_path: Path) -> None:
    jobs = [job(f"j{i}", "sleep 0.5") for i in range(4)]
    result, sink = run(tmp_path, *jobs, concurrency=2)
    assert result.status == "passed"
    assert max_overlap(sink) == 2


def test_needs_order_jobs(tmp_path: Path) -> None:
    result, sink = run(
        tmp_path, job("first", "sleep 0.2"), job("second", "true", needs=("first",)), concurrency=4
    )
    assert result.status == "passed"
    ends = {e.step: e.time for e in sink.of(StepFinished)}
    starts = {e.job: e.time for e in sink.of(StepStarted)}
    assert starts["second"] >= ends["sleep 0.2"]


def test_cancel_kills_running_jobs_fast_and_cancels_pending(tmp_path: Path) -> None:
    cancel = threading.Event()
    timer = threading.Timer(1.0, cancel.set)
    timer.start()
    began = time.monotonic()
    try:
        result, sink = run(
            tmp_path,
            job("long", "sleep 120"),
            job("after", "true", needs=("long",)),
            cancel=cancel,
        )
    finally:
        timer.cancel()
    elapsed = time.monotonic() - began
    assert elapsed < 1.0 + 5  # canceled at 1 s; the step alone would take 120 s
    assert result.status == "canceled"
    assert result.jobs["long"].status == "canceled"
    assert result.jobs["after"].status == "canceled"
    assert [e.status for e in sink.of(StepFinished)] == ["canceled"]


def test_cancel_stops_services_and_queued_jobs(tmp_path: Path) -> None:
    service = ServiceSpec("idle", image=ImageSpec(), command=("sleep", "120"))
    cancel = threading.Event()
    timer = threading.Timer(1.0, cancel.set)
    timer.start()
    began = time.monotonic()
    try:
        result, sink = run(
            tmp_path,
            job("busy", "sleep 120", services=(service,)),
            job("waiting", "true"),  # independent, but the only slot is taken
            cancel=cancel,
            concurrency=1,
        )
    finally:
        timer.cancel()
    assert time.monotonic() - began < 1.0 + 5
    assert result.jobs["busy"].status == "canceled"
    assert result.jobs["waiting"].status == "canceled" and result.jobs["waiting"].attempts == 0
    assert {e.job for e in sink.of(StepStarted)} == {"busy"}
