"""Job selection, skip propagation and pipeline status: the pure scheduling rules."""

from __future__ import annotations

import pytest

from runner.config.spec import JobSpec, PipelineSpec, StepSpec
from runner.pipeline.graph import Schedule, select
from runner.pipeline.results import PipelineError


def job(name: str, *needs: str, base: str | None = None, **kw: object) -> JobSpec:
    return JobSpec(
        name=name,
        base_name=base or name,
        steps=(StepSpec("s", "true"),),
        needs=tuple(needs),
        **kw,  # type: ignore[arg-type]
    )


def names(jobs: list[JobSpec]) -> list[str]:
    return [j.name for j in jobs]


def test_select_all_keeps_pipeline_order() -> None:
    spec = PipelineSpec((job("a"), job("b", "a"), job("c")))
    assert names(select(spec, None)) == ["a", "b", "c"]


def test_select_only_adds_transitive_needs() -> None:
    spec = PipelineSpec((job("a"), job("b", "a"), job("c", "b"), job("d")))
    assert names(select(spec, ["c"])) == ["a", "b", "c"]


def test_select_only_by_base_name_takes_every_matrix_variant() -> None:
    spec = PipelineSpec(
        (job("lint"), job("test (py: 3.11)", base="test"), job("test (py: 3.12)", base="test"))
    )
    assert names(select(spec, ["test"])) == ["test (py: 3.11)", "test (py: 3.12)"]


def test_select_unknown_job_is_a_clear_error() -> None:
    spec = PipelineSpec((job("build"), job("test")))
    with pytest.raises(PipelineError, match=r"unknown job 'deploy' \(jobs: build, test\)"):
        select(spec, ["deploy"])


def test_unknown_need_and_cycle_are_errors() -> None:
    with pytest.raises(PipelineError, match="needs 'ghost'"):
        select(PipelineSpec((job("a", "ghost"),)), None)
    with pytest.raises(PipelineError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        select(PipelineSpec((job("a", "b"), job("b", "a"))), None)


def test_runnable_respects_needs() -> None:
    schedule = Schedule([job("a"), job("b"), job("c", "a", "b")])
    assert schedule.skips() == []
    assert names(schedule.runnable()) == ["a", "b"]
    schedule.start("a")
    schedule.start("b")
    assert schedule.runnable() == []
    schedule.finish("a", "passed")
    assert schedule.runnable() == []
    schedule.finish("b", "passed")
    assert names(schedule.runnable()) == ["c"]


def test_failure_skips_dependants_transitively_with_reason() -> None:
    schedule = Schedule([job("a"), job("b", "a"), job("c", "b"), job("d")])
    schedule.start("a")
    schedule.finish("a", "failed", "step 'x' exited with code 1")
    skipped = dict(schedule.skips())
    assert skipped == {"b": "needs 'a', which failed", "c": "needs 'b', which was skipped"}
    assert names(schedule.runnable()) == ["d"]
    schedule.start("d")
    schedule.finish("d", "passed")
    assert schedule.settled()
    assert schedule.pipeline_status(canceled=False) == "failed"


def test_allow_failure_does_not_skip_dependants_or_fail_pipeline() -> None:
    schedule = Schedule([job("flaky", allow_failure=True), job("after", "flaky")])
    schedule.start("flaky")
    schedule.finish("flaky", "failed")
    assert schedule.skips() == []
    assert names(schedule.runnable()) == ["after"]
    schedule.start("after")
    schedule.finish("after", "passed")
    assert schedule.pipeline_status(canceled=False) == "passed"


def test_false_condition_skips_job_and_its_dependants_without_failing() -> None:
    schedule = Schedule([job("a"), job("deploy", "a", condition=False), job("notify", "deploy")])
    assert names(schedule.runnable()) == ["a"]
    schedule.start("a")
    schedule.finish("a", "passed")
    skipped = dict(schedule.skips())
    assert skipped["deploy"] == "its if: condition is false"
    assert skipped["notify"] == "needs 'deploy', which was skipped"
    assert schedule.settled()
    # skipping because of a false `if:` upstream is not a failure
    assert schedule.pipeline_status(canceled=False) == "passed"


def test_skip_caused_by_failure_upstream_fails_pipeline_even_if_failed_job_may_fail() -> None:
    # `a` errored while allowed to fail: its required dependants never ran, so the pipeline failed
    schedule = Schedule([job("a", allow_failure=True), job("b", "a"), job("c", "b")])
    schedule.finish("a", "error")
    assert dict(schedule.skips()) == {"b": "needs 'a', which errored", "c": "needs 'b', which was skipped"}
    assert schedule.pipeline_status(canceled=False) == "failed"


def test_condition_false_on_leaf_passes_pipeline() -> None:
    schedule = Schedule([job("a"), job("deploy", "a", condition=False)])
    schedule.start("a")
    schedule.finish("a", "passed")
    schedule.skips()
    assert schedule.pipeline_status(canceled=False) == "passed"


def test_error_outranks_failure_and_cancel_outranks_all() -> None:
    schedule = Schedule([job("a"), job("b")])
    schedule.finish("a", "failed")
    schedule.finish("b", "error")
    assert schedule.pipeline_status(canceled=False) == "error"
    assert schedule.pipeline_status(canceled=True) == "canceled"


def test_errored_need_skips_with_reason() -> None:
    schedule = Schedule([job("a"), job("b", "a")])
    schedule.finish("a", "error")
    assert schedule.skips() == [("b", "needs 'a', which errored")]
