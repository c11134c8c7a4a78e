"""Finding jobs whose worker died and sending them again, whatever the broker does.

Celery brings back a lost worker's message only after the broker's visibility timeout (hours, so
that long jobs are never redelivered while they run). The store knows sooner: a running job whose
lease has not been renewed for a whole lease period has lost its worker. The web server sweeps for
such jobs and sends each one message; claims in the store keep any duplicate from running twice.

A worker killed between settling a build and reporting it leaves the forge without the final
status. The store knows that too (`status_reported` differs from `status`), and a second sweep sends
those once the settling worker has had `STATUS_GRACE` to report first: at least once, since the
forge takes the same state twice harmlessly. It runs on its own thread, so that a forge timing out
never delays the resending of lost jobs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from runner.server.queue import Dispatcher
from runner.server.status import report_final
from runner.server.store import BuildStore

log = logging.getLogger("runner.server.recovery")
#: Seconds a settled build is left to its worker to report before the sweep sends its status (at
#: least a lease): long enough that the worker normally does, so that duplicates stay rare.
STATUS_GRACE = 30.0
#: Builds whose status one sweep sends at most.
STATUS_BATCH = 50
#: Seconds a sent job may wait unclaimed before it is sent again (its message may have died with a
#: worker). Jobs that merely wait behind busy workers get one harmless duplicate per wait.
UNCLAIMED_WAIT = 300.0


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


def resend_unclaimed_jobs(store: BuildStore, dispatcher: Dispatcher, wait: float) -> list[int]:
    """Send again every queued job sent over `wait` seconds ago that no worker claimed; their ids."""
    sent = []
    for job_id, labels in store.take_unclaimed_jobs(wait):
        try:
            dispatcher.send(job_id, labels)
            sent.append(job_id)
            log.warning("job %s was not claimed %.0f s after it was sent: sent again", job_id, wait)
        except Exception as exc:  # the broker is down: a later sweep tries again
            log.warning("job %s was not claimed, and the broker refused it again: %s", job_id, exc)
    return sent


def report_lost_statuses(
    store: BuildStore, public_url: str, grace: float, limit: int = STATUS_BATCH
) -> list[int]:
    """Send the final status of builds settled over `grace` seconds ago that the forge never got.

    Each is marked once the forge took it; a forge that refuses or is down keeps its builds for the
    next sweep (one log line per failed send), and the rest of that forge's builds wait for it too,
    so that a forge timing out costs one send per sweep, not `limit`. The ids of the builds sent.
    """
    sent, down = [], set()
    for build in store.unreported_builds(grace, limit):
        if build.forge in down:
            continue
        if report_final(store, build, public_url):
            sent.append(build.id)
            log.warning("build %s: final status %s sent again (its worker was lost)", build.id, build.status)
        else:
            down.add(build.forge)
            log.warning(
                "build %s: final status %s still not sent to %s: the next sweep tries again",
                build.id,
                build.status,
                build.forge,
            )
    return sent


class RecoveryLoop:
    """Daemon threads running `requeue_lost_jobs` and `report_lost_statuses` every half lease."""

    def __init__(self, store: BuildStore, dispatcher: Dispatcher, lease: float, public_url: str = "") -> None:
        self.store, self.dispatcher, self.lease, self.public_url = store, dispatcher, lease, public_url
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(self._jobs, "lost jobs"), name="recovery", daemon=True),
            threading.Thread(
                target=self._run, args=(self._statuses, "lost statuses"), name="recovery-status", daemon=True
            ),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _jobs(self) -> None:
        requeue_lost_jobs(self.store, self.dispatcher, self.lease)
        resend_unclaimed_jobs(self.store, self.dispatcher, max(UNCLAIMED_WAIT, 4 * self.lease))

    def _statuses(self) -> None:
        report_lost_statuses(self.store, self.public_url, max(STATUS_GRACE, self.lease))

    def _run(self, sweep: Callable[[], object], what: str) -> None:
        while not self._stop.wait(max(0.5, self.lease / 2)):
            try:
                sweep()
            except Exception as exc:  # the store is briefly unreachable
                log.warning("looking for %s: %s", what, exc)
