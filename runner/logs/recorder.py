"""Recording a job's log lines in both places at once: storage first (durable), then the live stream."""

from __future__ import annotations

import threading
from typing import Any

from runner.logs.lines import load_index
from runner.logs.storage import Storage
from runner.logs.stream import LogStream


class LogRecorder:
    """What a worker calls for every log line of a job, and once at the job's end.

    Each recorded line is one line of the stored log and one entry of the stream, in the same order,
    so line numbers agree between them (this is what makes `sse_events` resumable). A text holding
    newlines is recorded as several lines. Storage is written first: a reader that finds a line in
    the stream always finds it, and everything before it, in storage.

    Storage numbers the lines: the recorder counts the stored lines of a job once (a rerun of a job
    whose worker was killed continues its log) and gives each stream entry its stored line number, so
    a stream append that failed (Redis restarting) never shifts the numbers of later lines. A Redis
    error still propagates, after the line is stored.
    """

    def __init__(self, stream: LogStream | None, storage: Storage) -> None:
        self.stream = stream
        self.storage = storage
        self._counts: dict[tuple[int, str], int] = {}
        self._locks: dict[tuple[int, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: tuple[int, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _stored_count(self, build_id: int, job: str) -> int:
        return load_index(self.storage, build_id, job).lines  # only the bytes the index has not seen

    def line(self, build_id: int, job: str, line: dict[str, Any]) -> None:
        text = str(line.get("text", ""))
        pieces = text.replace("\r\n", "\n").split("\n")
        key = (int(build_id), job)
        with self._lock(key):
            if key not in self._counts:
                self._counts[key] = self._stored_count(build_id, job)
            for piece in pieces:
                self.storage.append_log(build_id, job, piece + "\n")
                self._counts[key] += 1
                if self.stream is not None:
                    record = {**line, "text": piece} if len(pieces) > 1 else line
                    self.stream.append(build_id, job, record, number=self._counts[key])

    def end(self, build_id: int, job: str) -> None:
        """Once per job, after its last attempt: storage marks the log complete, the stream ends."""
        key = (int(build_id), job)
        with self._lock(key):
            self._counts.pop(key, None)
            self.storage.mark_log_complete(build_id, job)
            load_index(self.storage, build_id, job)  # the finished log's index, before any page asks
            if self.stream is not None:
                self.stream.end(build_id, job)
