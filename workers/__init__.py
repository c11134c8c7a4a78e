"""Celery workers: thin glue from a queued job to `runner.pipeline` (see `workers.tasks`)."""
