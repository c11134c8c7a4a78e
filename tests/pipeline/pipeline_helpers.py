"""Small builders shared by the pipeline tests: specs from plain arguments, run options, one-call runs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from runner.config.spec import JobSpec, PipelineSpec, StepSpec
from runner.pipeline import PipelineResult, RunOptions, run_pipeline
from runner.pipeline.events import Collector, LogLine, StepFinished
from runner.settings import Paths


def step(run: str, name: str | None = None, **kw: Any) -> StepSpec:
    return StepSpec(name=name or run.split("\n")[0][:30], run=run, **kw)


def job(name: str, *steps: StepSpec | str, **kw: Any) -> JobSpec:
    built = tuple(s if isinstance(s, StepSpec) else step(s) for s in steps)
    return JobSpec(name=name, base_name=kw.pop("base_name", name), steps=built, **kw)


def options(tmp_path: Path, **kw: Any) -> RunOptions:
    workspace = kw.pop("workspace", None)
    if workspace is None:
        workspace = tmp_path / "src"
        workspace.mkdir(exist_ok=True)
    return RunOptions(
        workspace=workspace,
        paths=kw.pop("paths", Paths(tmp_path / "home")),
        artifacts_dir=kw.pop("artifacts_dir", tmp_path / "artifacts"),
        **kw,
    )


def run(
    tmp_path: Path, *jobs: JobSpec, cancel: threading.Event | None = None, **kw: Any
) -> tuple[PipelineResult, Collector]:
    sink = Collector()
    result = run_pipeline(PipelineSpec(tuple(jobs)), options(tmp_path, **kw), sink, cancel)
    return result, sink


def out(sink: Collector, job: str, step: str | None = None, stream: str | None = None) -> list[str]:
    """Lines a job (or one of its steps) printed."""
    return [
        e.text
        for e in sink.of(LogLine)
        if e.job == job and (step is None or e.step == step) and (stream is None or e.stream == stream)
    ]


def steps(sink: Collector, job: str) -> dict[str, StepFinished]:
    return {e.step: e for e in sink.of(StepFinished) if e.job == job}
