"""`GET /metrics`: Prometheus metrics read from the store and the broker when scraped.

Builds by status and queue depth are gauges set at scrape time; job durations feed a histogram
from the jobs finished since the last scrape; container start times come from the jobs'
`PhaseFinished` records when the engine reports them (phase durations by phase).
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from runner.server.queries import BuildQueries
from runner.server.queue import DEFAULT_QUEUE, Dispatcher, queue_for

BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
CONTAINER_START = "container_start"  # a phase the engine reports as its first container's start time
STATUSES = ("queued", "running", "passed", "failed", "skipped", "canceled", "error")


class Metrics:
    def __init__(self, queries: BuildQueries, dispatcher: Dispatcher) -> None:
        self.queries, self.dispatcher = queries, dispatcher
        self.registry = CollectorRegistry()
        self.builds = Gauge(
            "runner_builds", "Builds in the store by status", ["status"], registry=self.registry
        )
        self.queue = Gauge(
            "runner_queue_depth", "Jobs waiting in a broker queue", ["queue"], registry=self.registry
        )
        self.jobs = Histogram(
            "runner_job_duration_seconds", "Duration of finished jobs", ["status"],
            buckets=BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.container_start = Histogram(
            "runner_container_start_seconds", "Time to start a job's first container",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=self.registry,
        )  # fmt: skip
        self.phases = Histogram(
            "runner_job_phase_seconds", "Duration of a job's phases (image, services, caches, upload)",
            ["phase"], buckets=BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._floor = 0  # every job at or below this id has been observed
        self._seen: set[int] = set()
        self._lock = threading.Lock()

    def _observe_jobs(self) -> None:
        for job_id, status, duration, phases in self.queries.finished_jobs(self._floor):
            if job_id in self._seen:
                continue
            self._seen.add(job_id)
            self.jobs.labels(status).observe(duration)
            for phase, seconds in phases.items():
                if phase == CONTAINER_START:
                    self.container_start.observe(float(seconds))
                else:
                    self.phases.labels(phase).observe(float(seconds))
        oldest = self.queries.oldest_unfinished_job()
        floor = oldest - 1 if oldest is not None else max(self._seen, default=self._floor)
        self._floor = max(self._floor, floor)
        self._seen = {job_id for job_id in self._seen if job_id > self._floor}

    def render(self) -> bytes:
        with self._lock:
            counts = self.queries.status_counts()
            for status in STATUSES:
                self.builds.labels(status).set(counts.get(status, 0))
            queues = {DEFAULT_QUEUE} | {queue_for(labels) for labels in self.queries.waiting_labels()}
            for queue, depth in self.dispatcher.queue_depth(sorted(queues)).items():
                self.queue.labels(queue).set(depth)
            self._observe_jobs()
            return generate_latest(self.registry)
