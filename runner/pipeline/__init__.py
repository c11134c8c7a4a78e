"""The pipeline engine: runs a compiled `PipelineSpec` job by job in containers, emitting events to a sink."""

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
