"""Server-Sent Events for one job's log: live from the Redis stream, then the stored log, then `end`.

Every event is `id: <line number>` and `data: <JSON object>` (the recorded line dict; lines read
from storage are `{"text": ...}`). A client reconnecting with `Last-Event-ID: n` gets lines n+1 on,
whether the stream still holds them or only storage does (trimmed or expired streams). While a
job is quiet the generator yields `: keepalive` comments, which also lets the server notice a
disconnected client. The last event is `event: end`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from runner.logs.lines import line_offset
from runner.logs.storage import Storage
from runner.logs.stream import LogStream, line_number

_CHUNK = 64 * 1024


def _event(number: int, line: dict[str, Any]) -> str:
    data = json.dumps(line, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"id: {number}\ndata: {data}\n\n"


def _parse_last_id(value: str | None) -> int:
    """A Last-Event-ID header as a line number; anything unreadable means from the start.

    Past 2**63-1 it is clamped: Redis stream ids are 64-bit, and a larger one is an error of the
    stream read in the middle of the response (no line has such a number: the client has them all).
    """
    try:
        return min(max(0, line_number(value.strip())), 2**63 - 1) if value else 0
    except ValueError:
        return 0


def stored_lines(
    storage: Storage, build_id: int, job: str, first: int, last: int | None = None, complete: bool = True
) -> Iterator[tuple[int, str]]:
    """`(line number, text)` of stored lines `first..last` (1-based, inclusive; `last=None`: to the end).

    Without `complete`, a final line still missing its newline is held back (it is being written).
    """
    offset, number = line_offset(storage, build_id, job, first)  # seek near `first`, not from the top
    number -= 1
    pending = b""
    while True:
        chunk = storage.read_log(build_id, job, offset, _CHUNK)
        offset += len(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            number += 1
            if last is not None and number > last:
                return
            if number >= first:
                yield number, raw.decode("utf-8", "replace")
        if len(chunk) < _CHUNK:
            break
    if pending and complete and (last is None or number + 1 <= last) and number + 1 >= first:
        yield number + 1, pending.decode("utf-8", "replace")


def sse_events(
    stream: LogStream,
    storage: Storage,
    build_id: int,
    job: str,
    last_event_id: str | None = None,
    *,
    block_ms: int = 5000,
    job_finished: Callable[[], bool] | None = None,
) -> Iterator[str]:
    """The SSE text of a job's log, resumable from `last_event_id` (see the module docstring).

    The live phase ends at the stream's end marker; when a wait brings nothing, also when
    `job_finished()` is true (the build store knows; a killed worker never marks the end) or when
    there is no stream (expired) and storage says the log is complete. Until then it waits,
    yielding keep-alives every `block_ms`.
    """
    sent = _parse_last_id(last_event_id)
    cursor = f"{sent}-0"
    wait = 0  # the first read does not block: a finished job's log is answered at once
    while True:
        entries, cursor, ended = stream.read(build_id, job, after=cursor, block_ms=wait)
        wait = block_ms
        for entry_id, line in entries:
            number = line_number(entry_id)
            if number <= sent:
                continue
            if number > sent + 1:  # trimmed out of the stream: storage still has them
                for gap_number, text in stored_lines(storage, build_id, job, sent + 1, number - 1, False):
                    yield _event(gap_number, {"text": text})
            yield _event(number, line)
            sent = number
        if ended:
            break
        if not entries:
            if job_finished is not None and job_finished():
                break  # e.g. a worker died before it could mark the end: do not wait for it
            if storage.log_complete(build_id, job) and not stream.exists(build_id, job):
                break
            yield ": keepalive\n\n"
    for number, text in stored_lines(storage, build_id, job, sent + 1):
        yield _event(number, {"text": text})
    yield "event: end\ndata: {}\n\n"
