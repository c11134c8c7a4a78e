"""Recording a job's log lines in both places at once: storage first (durable), then the live stream."""

from __future__ import annotations

from typing import Any

from runner.logs.storage import Storage
from runner.logs.stream import LogStream


class LogRecorder:
    """What a worker calls for every log line of a job, and once at the job's end.

    Each recorded line is one line of the stored log and one entry of the stream, in the same order,
    so line numbers agree between them (this is what makes `sse_events` resumable). A text holding
    newlines is recorded as several lines. Storage is written first: a reader that finds a line in
    the stream always finds it, and everything before it, in storage.
    """

    def __init__(self, stream: LogStream | None, storage: Storage) -> None:
        self.stream = stream
        self.storage = storage

    def line(self, build_id: int, job: str, line: dict[str, Any]) -> None:
        text = str(line.get("text", ""))
        pieces = text.replace("\r\n", "\n").split("\n")
        for piece in pieces:
            self.storage.append_log(build_id, job, piece + "\n")
            if self.stream is not None:
                self.stream.append(build_id, job, {**line, "text": piece} if len(pieces) > 1 else line)

    def end(self, build_id: int, job: str) -> None:
        self.storage.mark_log_complete(build_id, job)
        if self.stream is not None:
            self.stream.end(build_id, job)
