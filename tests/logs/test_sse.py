"""Server-Sent Events of a job log: live from a real Redis, then storage, resumable by Last-Event-ID."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers.redis_server import start_redis

from runner.logs import DirectoryStorage, LogRecorder, LogStream, sse_events
from runner.logs.sse import stored_lines

JOB = "test (py: 3.12)"


@dataclass
class Event:
    id: str | None
    event: str
    data: Any


def parse(chunks: Iterator[str], limit: int = 100_000) -> Iterator[Event | None]:
    """SSE text to events, checking the framing; None for a comment (keep-alive)."""
    for _, chunk in zip(range(limit), chunks, strict=False):
        assert chunk.endswith("\n\n") and chunk.count("\n\n") == 1, chunk
        fields: dict[str, str] = {}
        comment = True
        for line in chunk[:-2].split("\n"):
            if line.startswith(":"):
                continue
            comment = False
            name, _, value = line.partition(": ")
            assert name in ("id", "data", "event"), line
            fields[name] = value
        yield (
            None
            if comment
            else Event(fields.get("id"), fields.get("event", "message"), json.loads(fields["data"]))
        )


def events_of(chunks: Iterator[str]) -> list[Event]:
    return [event for event in parse(chunks) if event is not None]


@pytest.fixture
def parts(redis_url: str, tmp_path: Path) -> tuple[LogStream, DirectoryStorage, LogRecorder]:
    stream = LogStream(redis_url)
    storage = DirectoryStorage(tmp_path / "store")
    return stream, storage, LogRecorder(stream, storage)


def test_live_lines_from_another_thread(parts: tuple[LogStream, DirectoryStorage, LogRecorder]) -> None:
    stream, storage, recorder = parts
    written_at: dict[str, float] = {}

    def run_job() -> None:
        for number in range(1, 31):
            time.sleep(0.02)
            written_at[f"line {number}"] = time.monotonic()
            recorder.line(1, JOB, {"text": f"line {number}", "stream": "stdout"})
        recorder.end(1, JOB)

    worker = threading.Thread(target=run_job)
    worker.start()
    received: list[tuple[Event, float]] = []
    for event in parse(sse_events(stream, storage, 1, JOB, block_ms=500)):
        if event is not None:
            received.append((event, time.monotonic()))
    worker.join()
    events = [event for event, _ in received]
    assert events[-1].event == "end" and events[-1].id is None
    lines = events[:-1]
    assert [e.id for e in lines] == [str(n) for n in range(1, 31)]
    assert [e.data for e in lines] == [{"text": f"line {n}", "stream": "stdout"} for n in range(1, 31)]
    lag = [arrived - written_at[event.data["text"]] for event, arrived in received[:-1]]
    assert max(lag) < 1.0  # streamed while the job ran, not replayed afterwards
    assert storage.read_log(1, JOB).decode().splitlines() == [f"line {n}" for n in range(1, 31)]


def test_resume_with_last_event_id(parts: tuple[LogStream, DirectoryStorage, LogRecorder]) -> None:
    stream, storage, recorder = parts
    for number in range(1, 11):
        recorder.line(2, JOB, {"text": f"l{number}"})
    first = parse(sse_events(stream, storage, 2, JOB, block_ms=100))
    seen = [next(first) for _ in range(4)]
    assert [e.id for e in seen if e] == ["1", "2", "3", "4"]
    recorder.line(2, JOB, {"text": "l11"})
    recorder.end(2, JOB)
    rest = events_of(sse_events(stream, storage, 2, JOB, last_event_id="4", block_ms=100))
    assert [e.id for e in rest[:-1]] == [str(n) for n in range(5, 12)]
    assert rest[-1].event == "end"
    assert events_of(sse_events(stream, storage, 2, JOB, last_event_id="11", block_ms=100))[0].event == "end"
    garbage = events_of(sse_events(stream, storage, 2, JOB, last_event_id="nonsense", block_ms=100))
    assert len(garbage) == 12  # unreadable id: from the start


def test_expired_stream_is_served_from_storage(
    parts: tuple[LogStream, DirectoryStorage, LogRecorder],
) -> None:
    stream, storage, recorder = parts
    recorder.line(3, JOB, {"text": "first\nsecond"})  # a multi-line text is two lines in both places
    recorder.line(3, JOB, {"text": "third"})
    recorder.end(3, JOB)
    stream.delete(3, JOB)  # what the TTL does an hour after the end
    events = events_of(sse_events(stream, storage, 3, JOB, block_ms=100))
    assert [(e.id, e.data) for e in events[:-1]] == [
        ("1", {"text": "first"}),
        ("2", {"text": "second"}),
        ("3", {"text": "third"}),
    ]
    resumed = events_of(sse_events(stream, storage, 3, JOB, last_event_id="2", block_ms=100))
    assert [e.id for e in resumed] == ["3", None]


def test_trimmed_stream_fills_the_gap_from_storage(redis_url: str, tmp_path: Path) -> None:
    stream = LogStream(redis_url, maxlen=50)
    storage = DirectoryStorage(tmp_path)
    recorder = LogRecorder(stream, storage)
    for number in range(1, 501):
        recorder.line(4, JOB, {"text": f"n{number}", "step": "s"})
    recorder.end(4, JOB)
    first = stream.first_id(4, JOB)
    assert first is not None and first != "1-0"  # the stream lost its head
    events = events_of(sse_events(stream, storage, 4, JOB, block_ms=100))
    assert [e.id for e in events[:-1]] == [str(n) for n in range(1, 501)]
    assert [e.data["text"] for e in events[:-1]] == [f"n{n}" for n in range(1, 501)]
    assert events[-1].event == "end"


def test_quiet_job_gets_keepalives_and_a_dead_worker_does_not_hang_the_client(
    parts: tuple[LogStream, DirectoryStorage, LogRecorder],
) -> None:
    stream, storage, recorder = parts
    recorder.line(5, JOB, {"text": "started"})
    finished = threading.Event()
    items = list(
        parse(sse_events(stream, storage, 5, JOB, block_ms=100, job_finished=lambda: finished.is_set()), 3)
    )
    assert items[0] is not None and items[0].data == {"text": "started"}
    assert items[1:] == [None, None]  # keep-alive comments while nothing happens
    finished.set()  # the build store says the job ended (its worker was killed: no end marker)
    events = events_of(sse_events(stream, storage, 5, JOB, block_ms=100, job_finished=finished.is_set))
    assert [e.id for e in events] == ["1", None]


def test_job_not_started_yet_waits_then_streams(
    parts: tuple[LogStream, DirectoryStorage, LogRecorder],
) -> None:
    stream, storage, recorder = parts

    def start_later() -> None:
        time.sleep(0.3)
        recorder.line(6, JOB, {"text": "hello"})
        recorder.end(6, JOB)

    thread = threading.Thread(target=start_later)
    thread.start()
    events = events_of(sse_events(stream, storage, 6, JOB, block_ms=100))
    thread.join()
    assert [(e.id, e.data) for e in events[:-1]] == [("1", {"text": "hello"})]


def test_stored_lines_holds_back_a_partial_line(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    storage.append_log(1, "j", "a\nb\npart")
    assert list(stored_lines(storage, 1, "j", 1, complete=False)) == [(1, "a"), (2, "b")]
    assert list(stored_lines(storage, 1, "j", 2)) == [(2, "b"), (3, "part")]
    assert list(stored_lines(storage, 1, "j", 1, 1)) == [(1, "a")]
    big = "x" * 70_000
    storage.append_log(2, "j", f"{big}\n{big}\nend\n")
    assert [n for n, _ in stored_lines(storage, 2, "j", 1)] == [1, 2, 3]
    assert [len(t) for _, t in stored_lines(storage, 2, "j", 2)] == [70_000, 3]


def test_lines_missed_by_redis_keep_their_numbers(tmp_path: Path) -> None:
    """Redis stops mid-job: the lines it missed come from storage, and later lines keep their numbers."""
    url, stop = start_redis(tmp_path, appendonly=True)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    storage = DirectoryStorage(tmp_path / "store")
    recorder = LogRecorder(LogStream(url), storage)
    try:
        recorder.line(8, JOB, {"text": "before 1"})
        recorder.line(8, JOB, {"text": "before 2"})
        stop()
        with pytest.raises(redis.ConnectionError):
            recorder.line(8, JOB, {"text": "while down"})  # stored, but not streamed
        url, stop = start_redis(tmp_path, port=port, appendonly=True)
        recorder.line(8, JOB, {"text": "after"})
        # a rerun of the job by another worker (the first was killed) continues the same log
        LogRecorder(LogStream(url), storage).line(8, JOB, {"text": "rerun"})
        recorder.end(8, JOB)
        stream = LogStream(url)
        assert [entry_id for entry_id, _ in stream.read(8, JOB)[0]] == ["1-0", "2-0", "4-0", "5-0"]
        events = events_of(sse_events(stream, storage, 8, JOB, block_ms=100))
        assert [(e.id, e.data["text"]) for e in events[:-1]] == [
            ("1", "before 1"),
            ("2", "before 2"),
            ("3", "while down"),
            ("4", "after"),
            ("5", "rerun"),
        ]
    finally:
        stop()
