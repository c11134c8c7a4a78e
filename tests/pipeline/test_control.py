"""JobControl: killing live containers on cancel or timeout, and per-attempt deadlines."""

from __future__ import annotations

import threading
import time

from runner.pipeline.control import JobControl


class Proc:
    def __init__(self) -> None:
        self.killed = 0

    def kill(self) -> None:
        self.killed += 1


def test_stop_kills_live_and_later_containers_and_keeps_first_reason() -> None:
    control = JobControl()
    live, gone = Proc(), Proc()
    control.track(live)
    control.track(gone)
    control.untrack(gone)
    control.stop("canceled")
    control.stop("timeout")
    assert control.stopped == "canceled"
    assert (live.killed, gone.killed) == (1, 0)
    late = Proc()
    control.track(late)  # started after the stop: killed at once
    assert late.killed == 1


def test_deadline_bounds_timeouts_and_resets_per_attempt() -> None:
    control = JobControl(timeout=0.2)
    assert control.remaining() is None and control.bound(5) == 5  # before the first attempt
    control.begin_attempt()
    bound = control.bound(5)
    assert bound is not None and 0 < bound <= 0.2
    assert control.bound(0.05) == 0.05
    time.sleep(0.25)
    assert control.expired() and control.bound(None) == 0.01  # 0 would mean no timeout
    control.stop("timeout")
    control.begin_attempt()
    assert control.stopped is None and not control.expired()


def test_cancel_survives_a_new_attempt_and_wakes_sleepers() -> None:
    control = JobControl(timeout=10)
    control.begin_attempt()
    woke: list[bool] = []
    sleeper = threading.Thread(target=lambda: woke.append(control.sleep(30)))
    sleeper.start()
    control.stop("canceled")
    sleeper.join(timeout=5)
    assert woke == [True]
    control.begin_attempt()
    assert control.stopped == "canceled"


def test_no_timeout_means_no_deadline() -> None:
    control = JobControl()
    control.begin_attempt()
    assert control.remaining() is None and not control.expired() and control.bound(None) is None


def test_cancel_after_a_timeout_is_not_lost_by_the_retry() -> None:
    control = JobControl(timeout=10)
    control.begin_attempt()
    control.stop("timeout")
    control.stop("canceled")
    control.begin_attempt()
    assert control.stopped == "canceled"
