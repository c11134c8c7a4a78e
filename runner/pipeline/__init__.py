"""The pipeline engine: runs a compiled `PipelineSpec` job by job in containers, emitting events to a sink.

    options = RunOptions(workspace=snapshot, paths=Paths.default(), artifacts_dir=out / "artifacts")
    result = run_pipeline(spec, options, sink, cancel)   # PipelineError if the selection is invalid

Modules: `engine` (scheduling loop, retries, cancel), `graph` (selection, skips, status), `job` (one
attempt: filesystem, network, steps), `services`, `caches`, `artifacts`, `envfile` ($RUNNER_ENV),
`control` (stopping a job), `image` and `reporting` (seams to runner.images and runner.reports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.pipeline.engine import run_job, run_pipeline
    from runner.pipeline.results import JobResult, PipelineError, PipelineResult, RunOptions, StepResult

_LAZY = {
    "run_job": "runner.pipeline.engine",
    "run_pipeline": "runner.pipeline.engine",
    "JobResult": "runner.pipeline.results",
    "PipelineError": "runner.pipeline.results",
    "PipelineResult": "runner.pipeline.results",
    "RunOptions": "runner.pipeline.results",
    "StepResult": "runner.pipeline.results",
}


def __getattr__(name: str) -> Any:
    """Import the engine only when it is used: `runner.pipeline.events` stays cheap for sinks and the CLI."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runner.pipeline' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)


__all__ = [
    "JobResult",
    "PipelineError",
    "PipelineResult",
    "RunOptions",
    "StepResult",
    "run_job",
    "run_pipeline",
]
