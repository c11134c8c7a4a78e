"""The pipeline engine: runs a compiled `PipelineSpec` job by job in containers, emitting events to a sink.

    options = RunOptions(workspace=snapshot, paths=Paths.default(), artifacts_dir=out / "artifacts")
    result = run_pipeline(spec, options, sink, cancel)   # PipelineError if the selection is invalid

Modules: `engine` (scheduling loop, retries, cancel), `graph` (selection, skips, status), `job` (one
attempt: filesystem, network, steps), `services`, `caches`, `artifacts`, `envfile` ($RUNNER_ENV),
`control` (stopping a job), `image` and `reporting` (seams to runner.images and runner.reports).
"""

from runner.pipeline.engine import run_job, run_pipeline
from runner.pipeline.results import JobResult, PipelineError, PipelineResult, RunOptions, StepResult

__all__ = [
    "JobResult",
    "PipelineError",
    "PipelineResult",
    "RunOptions",
    "StepResult",
    "run_job",
    "run_pipeline",
]
