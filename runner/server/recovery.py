"""Finding jobs whose worker died and sending them again, whatever the broker does.

Celery brings back a lost worker's message only after the broker's visibility timeout (hours, so
that long jobs are never redelivered while they run). The store knows sooner: a running job whose
lease has not been renewed for a whole lease period has lost its worker. The web server sweeps for
such jobs and sends each one message; claims in the store keep any duplicate from running twice.
"""

from __future__ import annotations

import logging
import threading

from runner.server.queue import Dispatcher
from runner.server.store import BuildStore

log = logging.getLogger("runner.server.recovery")


def requeue_lost_jobs(store: BuildStore, dispatcher: Dispatcher, grace: float) -> list[int]:
    """Send again every job whose lease ran out more than `grace` seconds ago; their ids."""
    sent = []
    for job_id, labels in store.take_lost_jobs(grace):
        try:
            dispatcher.send(job_id, labels)
            sent.append(job_id)
            log.warning("job %s lost its worker: sent again", job_id)
        except Exception as exc:  # the broker is down: the next sweep tries again
            log.warning("job %s lost its worker, and the broker refused it again: %s", job_id, exc)
    return sent


class RecoveryLoop:
    """A daemon thread running `requeue_lost_jobs` every half lease."""

    def __init__(self, store: BuildStore, dispatcher: Dispatcher, lease: float) -> None:
        self.store, self.dispatcher, self.lease = store, dispatcher, lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recovery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(max(0.5, self.lease / 2)):
            try:
                requeue_lost_jobs(self.store, self.dispatcher, self.lease)
            except Exception as exc:  # the store is briefly unreachable
                log.warning("looking for lost jobs: %s", exc)
