"""One Celery task per job: claim it, run it with the engine, store its results, enqueue what follows.

Delivery is at least once (late acks, requeue when a worker is lost), so the task makes running
exactly once its own business: a job is claimed in the store under a lease its worker renews.
A redelivered message finds the job finished (dropped), or claimed by a live worker (retried
later, in case that worker dies too), or claimed by a dead one whose lease ran out (run again).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from runner.server.queue import RUN_JOB_TASK
from runner.server.scheduler import advance
from workers.app import app
from workers.context import context
from workers.execute import execute

log = logging.getLogger("workers.tasks")


@app.task(bind=True, name=RUN_JOB_TASK, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_job(self: Any, job_id: int) -> str:
    ctx = context()
    token = uuid.uuid4().hex
    outcome = ctx.store.claim_job(job_id, token, ctx.name, ctx.settings.lease)
    if outcome == "busy":
        raise self.retry(countdown=max(1.0, ctx.settings.lease / 2))
    if outcome != "claimed":
        log.info("job %s: %s, nothing to do", job_id, outcome)
        return outcome
    job = ctx.store.job(job_id)
    status = execute(ctx, job_id, token)
    if job is not None:
        settle(job.build_id)
    return status


def settle(build_id: int, attempts: int = 20) -> None:
    """Enqueue the dependants of a finished job (the broker may be restarting: retry a while)."""
    ctx = context()
    for attempt in range(attempts):
        try:
            advance(ctx.store, ctx.dispatcher, build_id, ctx.settings.public_url)
            return
        except Exception as exc:
            log.warning("build %s: cannot enqueue the next jobs (attempt %d): %s", build_id, attempt + 1, exc)
            time.sleep(min(5.0, 0.5 * (attempt + 1)))
