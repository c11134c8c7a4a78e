"""Moving a build forward: skip what can never run, enqueue what may run now, settle the build.

The web server calls `advance` when a build is recorded, each worker when it finishes a job. The
rules are the engine's own (`runner.pipeline.graph.Schedule`), fed with the stored job states, so
a build on the server orders, skips and settles its jobs exactly like `runner exec`.
"""

from __future__ import annotations

import logging

from runner.config.spec import JobSpec
from runner.pipeline.graph import Schedule
from runner.server.queue import Dispatcher
from runner.server.status import report_final
from runner.server.store import BuildStore

log = logging.getLogger("runner.server.scheduler")


def advance(store: BuildStore, dispatcher: Dispatcher, build_id: int, public_url: str) -> str | None:
    """Enqueue the jobs whose needs passed; returns the build's status once it has settled.

    Raises when the broker refuses a message (the job stays queued and unflagged, so a later
    `advance` sends it again).
    """
    build = store.build(build_id)
    if build is None or build.finished_at is not None:
        return build.status if build else None
    jobs = store.jobs(build_id)
    specs = [
        JobSpec(
            name=job.name,
            base_name=job.name,
            steps=(),
            needs=tuple(job.needs),
            condition=job.condition,
            allow_failure=job.allow_failure,
        )
        for job in jobs
    ]
    schedule = Schedule(specs)
    by_name = {job.name: job for job in jobs}
    for job in jobs:
        schedule.finish(job.name, job.status, job.reason)  # type: ignore[arg-type]
    if not build.cancel_requested:
        for name, reason in schedule.skips():
            store.settle_job(by_name[name].id, "skipped", reason)
        for spec in schedule.runnable():
            job = by_name[spec.name]
            if job.enqueued or not store.mark_enqueued(job.id):
                continue
            try:
                dispatcher.send(job.id, job.labels)
            except Exception:
                store.mark_enqueued(job.id, False)
                raise
    if not schedule.settled():
        return None
    status = schedule.pipeline_status(build.cancel_requested)
    if store.finish_build(build_id, status, build.reason):
        finished = store.build(build_id)
        if finished is not None:  # killed before this, the recovery loop sends it (status_reported)
            report_final(store, finished, public_url)
    return status
