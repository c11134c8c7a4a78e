"""The Celery side both the web server and the workers share: configuration, queues, sending a job.

The server never imports the tasks: it sends `workers.tasks.run_job` by name, so the web process
stays free of the engine. A job's `labels:` choose its queue, so workers started with
`runner worker --queues gpu` take only the jobs labelled `gpu`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runner.server.settings import ServerSettings

if TYPE_CHECKING:
    from celery import Celery

DEFAULT_QUEUE = "runner"
RUN_JOB_TASK = "workers.tasks.run_job"


def queue_for(labels: Sequence[str]) -> str:
    """The queue of a job: its first label, else the default queue."""
    return labels[0] if labels else DEFAULT_QUEUE


def celery_config(settings: ServerSettings) -> dict[str, Any]:
    """Settings that make a job survive a lost worker: late acks, requeue on loss, one message at a time."""
    return {
        "broker_url": settings.broker_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": DEFAULT_QUEUE,
        "task_track_started": True,
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout,
            # Messages of a lost worker come back after the visibility timeout; look for them every
            # fifth of it (at most every minute) instead of kombu's default of every 100 s.
            "unacked_restore_interval": max(1, min(60, int(settings.visibility_timeout / 5))),
            "unacked_restore_throttle": 1,
            "max_retries": 5,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 2,
        },
        "broker_heartbeat": 10,
        "worker_send_task_events": True,  # Flower
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
    }


class Dispatcher:
    """Sends one message per runnable job; retries the broker briefly, then raises."""

    def __init__(self, settings: ServerSettings, app: Celery | None = None) -> None:
        if app is None:
            from celery import Celery

            app = Celery("runner-server")
            app.conf.update(celery_config(settings))
        self.app = app

    def send(self, job_id: int, labels: Sequence[str]) -> None:
        self.app.send_task(
            RUN_JOB_TASK,
            args=[job_id],
            queue=queue_for(labels),
            retry=True,
            retry_policy={"max_retries": 10, "interval_start": 0.1, "interval_step": 0.5, "interval_max": 2},
        )

    def queue_depth(self, queues: Sequence[str] = (DEFAULT_QUEUE,)) -> dict[str, int]:
        """Messages waiting per queue (Redis brokers only; other brokers answer nothing)."""
        depths: dict[str, int] = {}
        try:
            with self.app.connection_for_read() as conn:
                channel = conn.default_channel
                client = getattr(channel, "client", None)
                if client is None:
                    return depths
                for queue in queues:
                    depths[queue] = int(client.llen(queue))
        except Exception:
            return {}
        return depths
