"""Running one claimed job the way `runner exec` does: check out the sha, compile ci.yml, `run_job`.

The workspace is the exact sha from the repository's mirror; ci.yml is compiled against it with the
push's git facts, so `hash_files()`, matrices and `if:` evaluate exactly as they would locally.
Whatever goes wrong (the source, the config, a bug of ours) becomes the job's `error` with a
one-line reason: a job is never left running.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

from runner.pipeline.control import JobControl
from runner.pipeline.events import JobFinished, LogLine, PhaseFinished
from runner.pipeline.results import JobResult
from runner.server.models import Build, Job
from workers.context import WorkerContext
from workers.sink import WorkerSink
from workers.watch import Watch

log = logging.getLogger("workers.execute")


def _git_context(build: Build) -> dict[str, str]:
    return {
        "branch": build.branch, "tag": build.tag, "sha": build.sha,
        "event": build.event or "push", "repo": build.repo,
    }  # fmt: skip


def _secrets() -> dict[str, str]:
    from runner import settings
    from runner.pipeline.secrets import load_secrets_file

    path = settings.secrets_file()
    return load_secrets_file(path) if path else {}


def _run(ctx: WorkerContext, build: Build, job: Job, control: JobControl, sink: WorkerSink) -> JobResult:
    from runner.config import ConfigError, EvalContext, compile_pipeline, load
    from runner.pipeline.engine import run_job
    from runner.pipeline.results import RunOptions
    from runner.sources.mirror import SourceError

    paths = ctx.settings.paths
    paths.tmp.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"job-{job.id}-", dir=paths.tmp))
    try:
        workspace = scratch / "ws"
        started = time.monotonic()
        try:
            ctx.mirrors.checkout(build.repo_url, build.sha, workspace)
        except SourceError as exc:
            return JobResult(job.name, "error", f"cannot check out {build.sha[:12]}: {exc}")
        sink.emit(PhaseFinished(job.name, "clone", time.monotonic() - started, build.sha[:12]))
        try:
            document = load(workspace / "ci.yml")
            spec = compile_pipeline(document, EvalContext(git=_git_context(build), workspace=workspace))
            job_spec = spec.job(job.name)
        except ConfigError as exc:
            return JobResult(job.name, "error", str(exc).strip().splitlines()[0])
        except KeyError:
            return JobResult(job.name, "error", f"ci.yml at {build.sha[:12]} has no job {job.name!r}")
        if control.stopped == "canceled":
            return JobResult(job.name, "canceled", "the build was canceled")
        control.timeout = job_spec.timeout
        options = RunOptions(
            workspace=workspace, paths=paths, artifacts_dir=scratch / "artifacts",
            secrets=_secrets(), concurrency=1,
        )  # fmt: skip
        sink.artifacts_root = options.artifacts_dir
        return run_job(job_spec, options, sink, control)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def execute(ctx: WorkerContext, job_id: int, token: str) -> str:
    """Run a claimed job and record how it ended; returns its status."""
    job = ctx.store.job(job_id)
    build = ctx.store.build(job.build_id) if job else None
    if job is None or build is None:
        return "missing"
    ctx.store.start_build(build.id)
    control = JobControl()
    sink = WorkerSink(ctx, build.id, job.id, job.name)
    if job.attempts > 1:
        sink.line(f"--- run {job.attempts}: the worker that ran this job before was lost")
    started = time.monotonic()
    with Watch(ctx.store, build.id, job.id, token, ctx.settings.lease, control) as watch:
        try:
            result = _run(ctx, build, job, control, sink)
        except Exception as exc:  # a bug of ours or a broken environment: the job errors, one line
            log.exception("job %s of build %s", job.name, build.id)
            result = JobResult(job.name, "error", f"internal error: {type(exc).__name__}: {exc}")
        if result.attempts == 0:  # never reached the engine: its end was not emitted
            sink.emit(LogLine(job.name, None, "runner", result.reason))
            sink.emit(JobFinished(job.name, result.status, 0.0, 0, result.reason))
    if watch.lost:
        log.warning("job %s: another worker took it over; this run's result is dropped", job_id)
        return "lost"
    sink.close()
    ctx.store.finish_job(
        job_id, token, result.status, result.reason, result.attempts, time.monotonic() - started, sink.phases
    )
    return result.status
