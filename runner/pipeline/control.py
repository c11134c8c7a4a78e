"""Stopping a running job from outside: cancellation and the job's own timeout.

A job's thread registers every live container (steps, services, probes) with its `JobControl`;
the engine's scheduling loop calls `stop()` when the pipeline is canceled or the job's deadline
passes, which kills them all at once and makes the job's thread start nothing new.
"""

from __future__ import annotations

import threading
import time
from typing import Literal, Protocol

StopReason = Literal["canceled", "timeout"]


class Killable(Protocol):
    def kill(self) -> None: ...


class JobControl:
    def __init__(self, timeout: float | None = None) -> None:
        self._lock = threading.Lock()
        self._live: set[Killable] = set()
        self._event = threading.Event()
        self.timeout = timeout
        self.deadline: float | None = None
        self.stopped: StopReason | None = None

    def begin_attempt(self) -> None:
        """A fresh deadline for a new attempt (the job's `timeout` bounds each attempt).

        A previous attempt's timeout is forgotten; a cancellation is not.
        """
        with self._lock:
            if self.stopped == "timeout":
                self.stopped = None
                self._event.clear()
            self.deadline = None if self.timeout is None else time.monotonic() + self.timeout

    def remaining(self) -> float | None:
        """Seconds left before the job's deadline (None: no deadline)."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def bound(self, timeout: float | None) -> float | None:
        """`timeout` shortened to what is left of the job's time (never 0, which means none)."""
        left = self.remaining()
        if left is None:
            return timeout
        left = max(left, 0.01)
        return left if timeout is None else min(timeout, left)

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def track(self, container: Killable) -> None:
        """Register a live container; one started after `stop()` is killed at once."""
        with self._lock:
            self._live.add(container)
            stopped = self.stopped is not None
        if stopped:
            container.kill()

    def untrack(self, container: Killable) -> None:
        with self._lock:
            self._live.discard(container)

    def stop(self, reason: StopReason) -> None:
        """Kill every live container of the job. A cancel outranks a timeout (and survives a retry)."""
        with self._lock:
            if self.stopped == reason or self.stopped == "canceled":
                return  # already stopped: what was live then is dead, later ones die in track()
            self.stopped = reason
            live = list(self._live)
        self._event.set()
        for container in live:
            try:
                container.kill()
            except Exception:  # a container already gone: nothing left to kill
                pass

    def sleep(self, seconds: float) -> bool:
        """Wait up to `seconds`; True if the job was stopped meanwhile."""
        return self._event.wait(seconds)
