"""The engine's wiring without containers: selection errors, secrets checks, skips, errors, cancel."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pipeline_helpers import job, run

from runner.config.spec import ImageSpec, PipelineSpec
from runner.pipeline import PipelineError, run_pipeline
from runner.pipeline.events import Collector, JobFinished, JobStarted, PipelineFinished, PipelineStarted


def finished(sink: Collector) -> dict[str, JobFinished]:
    return {e.job: e for e in sink.of(JobFinished)}


def test_unknown_only_name_raises_before_anything_runs(tmp_path: Path) -> None:
    sink = Collector()
    from pipeline_helpers import options

    with pytest.raises(PipelineError, match="unknown job 'nope'"):
        run_pipeline(PipelineSpec((job("a", "true"),)), options(tmp_path, only=["nope"]), sink)
    assert sink.events == []


def test_missing_secret_fails_job_and_skips_dependants(tmp_path: Path) -> None:
    result, sink = run(
        tmp_path,
        job("deploy", "true", secrets=("PYPI_TOKEN",)),
        job("announce", "true", needs=("deploy",)),
        secrets={"OTHER": "x"},
    )
    assert result.status == "failed"
    assert result.jobs["deploy"].status == "failed"
    assert result.jobs["deploy"].reason == "secret PYPI_TOKEN is not set (add it to the secrets file)"
    assert result.jobs["announce"].status == "skipped"
    assert result.jobs["announce"].reason == "needs 'deploy', which failed"
    events = finished(sink)
    assert events["announce"].status == "skipped"
    assert isinstance(sink.events[0], PipelineStarted)
    assert isinstance(sink.events[-1], PipelineFinished) and sink.events[-1].status == "failed"


def test_an_image_that_cannot_be_pulled_fails_the_job(tmp_path: Path) -> None:
    result, _ = run(tmp_path, job("build", "true", image=ImageSpec(ref="localhost:1/nothing:1")))
    assert result.status == "failed"  # the image the user named: not the runner's own fault
    assert result.jobs["build"].status == "failed"
    reason = result.jobs["build"].reason
    assert reason.startswith("image localhost:1/nothing:1: ")
    assert "Connection refused" in reason  # nothing listens on port 1: the pull itself says why


def test_false_condition_skips_without_running(tmp_path: Path) -> None:
    result, sink = run(tmp_path, job("deploy", "true", condition=False))
    assert result.status == "passed"
    assert result.jobs["deploy"].status == "skipped"
    assert result.jobs["deploy"].attempts == 0
    assert sink.of(JobStarted) == []


def test_retry_of_a_deterministic_failure_stops_after_n_more(tmp_path: Path) -> None:
    result, sink = run(tmp_path, job("flaky", "true", secrets=("MISSING",), retry=2))
    assert result.jobs["flaky"].attempts == 3
    assert [e.attempt for e in sink.of(JobStarted)] == [1, 2, 3]
    assert len(sink.of(JobFinished)) == 1


def test_cancel_before_start_cancels_every_job(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    result, sink = run(tmp_path, job("a", "true"), job("b", "true", needs=("a",)), cancel=cancel)
    assert result.status == "canceled"
    assert {name: j.status for name, j in result.jobs.items()} == {"a": "canceled", "b": "canceled"}
    assert sink.of(JobStarted) == []


class ExplodingSink(Collector):
    """A sink that fails on one kind of event: the engine must turn that into a job error."""

    def emit(self, event: object) -> None:
        if isinstance(event, JobStarted):
            raise RuntimeError("sink is broken")
        super().emit(event)  # type: ignore[arg-type]


def test_exception_inside_a_job_is_an_error_status_not_a_crash(tmp_path: Path) -> None:
    from pipeline_helpers import options

    sink = ExplodingSink()
    spec = PipelineSpec((job("a", "true"), job("b", "true", needs=("a",))))
    result = run_pipeline(spec, options(tmp_path), sink)
    assert result.jobs["a"].status == "error"
    assert "sink is broken" in result.jobs["a"].reason
    assert result.jobs["b"].status == "skipped"
    assert result.status == "error"


class FailingPipelineEventsSink(Collector):
    def emit(self, event: object) -> None:
        if isinstance(event, PipelineStarted | PipelineFinished | JobFinished):
            raise OSError("disk full")
        super().emit(event)  # type: ignore[arg-type]


def test_a_failing_sink_in_the_scheduling_loop_does_not_crash_the_run(tmp_path: Path) -> None:
    from pipeline_helpers import options

    spec = PipelineSpec((job("a", "true", condition=False), job("b", "true", secrets=("NOPE",))))
    result = run_pipeline(spec, options(tmp_path), FailingPipelineEventsSink())
    assert result.jobs["a"].status == "skipped"
    assert result.jobs["b"].status == "error"  # its own JobFinished failed: reported as the job's error
    assert result.status == "error"


@pytest.mark.kernel  # the job's network namespace is made before its services
def test_service_with_unavailable_image_is_an_error(tmp_path: Path) -> None:
    from runner.config.spec import ServiceSpec

    service = ServiceSpec("db", image=ImageSpec(ref="localhost:1/nothing:1"), command=("true",))
    result, _ = run(tmp_path, job("j", "true", services=(service,)))
    assert result.jobs["j"].status == "error"
    assert result.jobs["j"].reason.startswith("service 'db': image localhost:1/nothing:1: ")
