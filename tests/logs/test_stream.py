"""LogStream against a real redis-server: ids, end marker, TTLs, trimming and live blocking reads."""

from __future__ import annotations

import threading
import time

import redis

from runner.logs import LogStream

JOB = "test (py: 3.12)"


def test_append_read_end(redis_url: str) -> None:
    stream = LogStream(redis_url)
    assert stream.append(7, JOB, {"text": "one", "stream": "stdout"}) == "1-0"
    assert stream.append(7, JOB, {"text": "twó"}) == "2-0"
    entries, last, ended = stream.read(7, JOB)
    assert entries == [("1-0", {"text": "one", "stream": "stdout"}), ("2-0", {"text": "twó"})]
    assert (last, ended) == ("2-0", False)
    assert stream.read(7, JOB, after=last) == ([], last, False)
    assert stream.read(7, JOB, after="1")[0] == [("2-0", {"text": "twó"})]  # a bare line number works
    stream.end(7, JOB)
    stream.end(7, JOB)  # idempotent
    entries, last, ended = stream.read(7, JOB, after="2-0")
    assert (entries, last, ended) == ([], "2-1", True)
    entries, _, ended = stream.read(7, JOB)
    assert len(entries) == 2 and ended
    assert stream.read(7, "other job") == ([], "0", False)


def test_keys_are_per_build_and_job_and_expire(redis_url: str) -> None:
    stream = LogStream(redis_url, ttl=300, ended_ttl=30)
    stream.append(1, JOB, {"text": "a"})
    stream.append(2, JOB, {"text": "b"})
    client = redis.Redis.from_url(redis_url)
    key = f"runner:log:1:{JOB}"
    assert client.xlen(key) == 1 and client.type(key) == b"stream"
    assert 0 < client.ttl(key) <= 300
    stream.end(1, JOB)
    assert 0 < client.ttl(key) <= 30
    assert 0 < client.ttl(key + ":n") <= 30
    stream.delete(2, JOB)
    assert not stream.exists(2, JOB) and stream.exists(1, JOB)


def test_stream_is_bounded(redis_url: str) -> None:
    stream = LogStream(redis_url, maxlen=100)
    client = redis.Redis.from_url(redis_url)
    pipe_start = time.monotonic()
    for number in range(1, 1001):
        stream.append(3, "big", {"text": f"line {number}"})
    assert time.monotonic() - pipe_start < 30
    length = client.xlen("runner:log:3:big")
    assert 100 <= length < 300  # approximate trimming keeps whole nodes
    first = stream.first_id(3, "big")
    assert first is not None and int(first.split("-")[0]) > 700
    entries, last, _ = stream.read(3, "big", count=5000)
    assert last == "1000-0" and entries[-1][1] == {"text": "line 1000"}


def test_blocking_read_sees_lines_from_another_thread(redis_url: str) -> None:
    stream = LogStream(redis_url)
    writer_stream = LogStream(redis_url)
    received: list[tuple[str, float]] = []
    sent_at: dict[str, float] = {}

    def write() -> None:
        for number in range(20):
            time.sleep(0.02)
            sent_at[f"l{number}"] = time.monotonic()
            writer_stream.append(9, JOB, {"text": f"l{number}"})
        writer_stream.end(9, JOB)

    thread = threading.Thread(target=write)
    thread.start()
    cursor, ended = "0", False
    deadline = time.monotonic() + 20
    while not ended and time.monotonic() < deadline:
        entries, cursor, ended = stream.read(9, JOB, after=cursor, block_ms=2000)
        received.extend((line["text"], time.monotonic()) for _, line in entries)
    thread.join()
    assert ended
    assert [text for text, _ in received] == [f"l{n}" for n in range(20)]
    delays = [arrived - sent_at[text] for text, arrived in received]
    assert max(delays) < 1.0  # read live, not at the end


def test_blocking_read_times_out_empty(redis_url: str) -> None:
    stream = LogStream(redis_url)
    started = time.monotonic()
    assert stream.read(4, "quiet", block_ms=200) == ([], "0", False)
    assert 0.15 < time.monotonic() - started < 5


def test_explicit_line_numbers_never_go_back(redis_url: str) -> None:
    stream = LogStream(redis_url)
    assert stream.append(10, "j", {"text": "a"}, number=3) == "3-0"
    assert stream.append(10, "j", {"text": "b"}) == "4-0"  # the counter follows the given numbers
    assert stream.append(10, "j", {"text": "c"}, number=2) == "5-0"  # never behind the last entry
    stream.end(10, "j")
    assert stream.read(10, "j", after="5-0") == ([], "5-1", True)
