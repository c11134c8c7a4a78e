"""The Celery application of the workers: `celery -A workers.app worker` or `runner worker`.

Its settings come from the environment (RUNNER_BROKER_URL...) through `runner.server.queue`, the
same place the web server takes them from, so that both agree on queues and transport options.
Flower works against it unchanged (task events are on).
"""

from __future__ import annotations

from celery import Celery

from runner.server.queue import celery_config
from runner.server.settings import ServerSettings


def make_app(settings: ServerSettings | None = None) -> Celery:
    settings = settings or ServerSettings.from_env()
    celery = Celery("runner", include=["workers.tasks"])
    celery.conf.update(celery_config(settings))
    return celery


app = make_app()
