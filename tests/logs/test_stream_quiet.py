"""A live log that stays quiet longer than redis-py's default socket timeout (5 s) keeps streaming.

redis-py 8 gives every connection a 5 s socket timeout, the same as the SSE generator's blocking
read: the read then raised `TimeoutError` and the page's live log broke after five silent seconds
(a `sleep 10` step). The stream's client waits longer than any read it makes blocks.
"""

from __future__ import annotations

import time

from runner.logs import DirectoryStorage, LogStream, sse_events


def test_a_blocking_read_longer_than_five_seconds_returns_quietly(redis_url: str) -> None:
    stream = LogStream(redis_url)
    started = time.monotonic()
    assert stream.read(3, "quiet", after="0", block_ms=5600) == ([], "0", False)
    assert time.monotonic() - started >= 5.5


def test_sse_keeps_a_quiet_job_alive_then_finishes_at_once(redis_url: str, tmp_path) -> None:
    stream, storage = LogStream(redis_url), DirectoryStorage(tmp_path)
    stream.append(4, "job", {"text": "hello"})
    storage.append_log(4, "job", "hello\n")
    finished = iter([False, True])
    events = sse_events(stream, storage, 4, "job", block_ms=5600, job_finished=lambda: next(finished))
    assert next(events).startswith("id: 1\n")
    assert next(events) == ": keepalive\n\n"  # 5.6 s of silence: no TimeoutError
    assert list(events) == ["event: end\ndata: {}\n\n"]
