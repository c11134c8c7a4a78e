"""A running job's watchman: cancel within 2 s, the job's timeout, and the claim's heartbeat.

The engine's own scheduling loop does this for `runner exec`; a worker runs one job with
`run_job`, so this thread plays that loop's part. Cancellation is a flag in the build store, polled
here, so it works on every broker.
"""

from __future__ import annotations

import threading
import time

from runner.pipeline.control import JobControl
from runner.server.store import BuildStore

POLL = 0.25  # seconds between two looks at the cancel flag and the deadline


class Watch:
    def __init__(
        self, store: BuildStore, build_id: int, job_id: int, token: str, lease: float, control: JobControl
    ) -> None:
        self.store, self.build_id, self.job_id, self.token = store, build_id, job_id, token
        self.lease = lease
        self.control = control
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{job_id}", daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        next_beat = time.monotonic() + self.lease / 3
        while not self._stop.wait(POLL):
            try:
                if self.control.stopped is None and self.store.cancel_requested(self.build_id):
                    self.control.stop("canceled")
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.lease / 3
                    if not self.store.heartbeat(self.job_id, self.token, self.lease):
                        self.lost = True  # another worker owns the job now: stop ours
                        self.control.stop("canceled")
            except Exception:  # the store is briefly unreachable: look again at the next tick
                pass
            if self.control.stopped is None and self.control.expired():
                self.control.stop("timeout")
