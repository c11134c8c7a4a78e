"""Reading a stored log by line number without reading the whole log: a sparse line-offset index.

A 50 MB log must not be read to show its last thousand lines or to resume a live stream at line
n. `LineIndex` keeps, beside the log, checkpoints `(byte offset, line number)` of line starts about
every `BLOCK` bytes, plus how far the log has been scanned. Reading lines `n..n+k` seeks to the
checkpoint at or before line n and reads forward at most about one block more than the lines asked for.

Logs only grow (a job appends), so the index is brought up to date by scanning only the bytes added
since the last scan; `mark_log_complete` and every read do it. For `DirectoryStorage` the index is
the file `log.idx` beside `log.txt` (replaced atomically; a missing, stale or damaged one is rebuilt
from the log); for any other `Storage` it lives in memory for the call.

Only lines ended by a newline are counted while a job runs; once the log is complete, a last line
without one counts too (the recorder always writes whole lines, so this is about foreign writers).
"""

from __future__ import annotations

import os
import re
import struct
import threading
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.logs.storage import Storage

BLOCK = 64 * 1024  # bytes between checkpoints: the most a lookup reads before the lines it wants
_SCAN = 1 << 20
_MAGIC = b"RLI2"
_HEADER = struct.Struct("<4sQQQ")  # magic, bytes scanned (a line start), lines in them, step headers
# how the runner opens a step in the log (workers/sink.py `line_record`); its closing line adds a status
STEP_START = re.compile(rb"^--- step (.*)$", re.MULTILINE)
STEP_END = re.compile(rb"^--- step .*: (passed|failed|skipped|canceled|error|running) \(.*\)$")


@dataclass
class LinePage:
    """Lines `start..start+len(lines)-1` of a log holding `total` lines (numbers are 1-based)."""

    total: int
    start: int
    lines: list[str]
    complete: bool
    step: dict[str, Any] | None = None  # the step header (`line`, `name`) the first line is inside

    @property
    def last(self) -> int:
        return self.start + len(self.lines) - 1

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total, "start": self.start, "lines": self.lines, "complete": self.complete,
            "step": self.step,
        }  # fmt: skip


@dataclass
class LineIndex:
    """Checkpoints of one log (`offsets[i]` starts line `numbers[i]`) and its step headers' line numbers."""

    scanned: int = 0
    lines: int = 0
    offsets: array[int] = field(default_factory=lambda: array("Q", [0]))
    numbers: array[int] = field(default_factory=lambda: array("Q", [1]))
    steps: array[int] = field(default_factory=lambda: array("Q"))

    def to_bytes(self) -> bytes:
        pairs = array("Q")
        for offset, number in zip(self.offsets, self.numbers, strict=True):
            pairs.extend((offset, number))
        header = _HEADER.pack(_MAGIC, self.scanned, self.lines, len(self.steps))
        return header + pairs.tobytes() + self.steps.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> LineIndex | None:
        """The index in `data`, or None when it is not a whole index file."""
        if len(data) < _HEADER.size:
            return None
        magic, scanned, lines, count = _HEADER.unpack_from(data)
        body = len(data) - _HEADER.size - 8 * count
        if magic != _MAGIC or body < 16 or body % 16:
            return None
        pairs, steps = array("Q"), array("Q")
        pairs.frombytes(data[_HEADER.size : _HEADER.size + body])
        steps.frombytes(data[_HEADER.size + body :])
        return cls(scanned, lines, array("Q", pairs[0::2]), array("Q", pairs[1::2]), steps)

    def extend(self, chunk: bytes) -> int:
        """Count the whole lines of `chunk`, which starts at `self.scanned`; returns the bytes used.

        Bytes after the chunk's last newline are left for the next scan (a line being written).
        """
        end = chunk.rfind(b"\n") + 1
        number, position = self.lines + 1, 0
        for found in STEP_START.finditer(chunk, 0, end):  # a regular expression: C speed, few matches
            number += chunk.count(b"\n", position, found.start())
            position = found.start()
            if not STEP_END.match(found.group(0)):
                self.steps.append(number)
        position = 0
        while position < end:
            stop = min(position + BLOCK, end)
            newline = chunk.rfind(b"\n", position, stop) + 1
            if newline <= position:  # a line longer than a block: no checkpoint inside it
                newline = chunk.find(b"\n", stop - 1) + 1
            self.lines += chunk.count(b"\n", position, newline)
            position = newline
            if self.scanned + position - self.offsets[-1] >= BLOCK:
                self.offsets.append(self.scanned + position)
                self.numbers.append(self.lines + 1)
        self.scanned += end
        return end

    def step_before(self, line: int) -> int | None:
        """The line number of the last step header at or before `line`."""
        i = bisect_right(self.steps, line)
        return self.steps[i - 1] if i else None

    def checkpoint(self, line: int) -> tuple[int, int]:
        """`(offset, number)` of the last checkpoint at or before line `line`."""
        i = max(0, bisect_right(self.numbers, line) - 1)
        return self.offsets[i], self.numbers[i]


def _index_path(storage: Storage, build_id: int, job: str) -> Path | None:
    log_path = getattr(storage, "log_path", None)
    return log_path(build_id, job).with_name("log.idx") if callable(log_path) else None


def _log_size(storage: Storage, build_id: int, job: str) -> int | None:
    log_path = getattr(storage, "log_path", None)
    if not callable(log_path):
        return None
    try:
        return os.stat(log_path(build_id, job)).st_size
    except FileNotFoundError:
        return 0


def load_index(storage: Storage, build_id: int, job: str) -> LineIndex:
    """The log's index, brought up to date with what the log holds now (saved when it changed)."""
    path = _index_path(storage, build_id, job)
    index: LineIndex | None = None
    if path is not None:
        try:
            index = LineIndex.from_bytes(path.read_bytes())
        except FileNotFoundError:
            index = None
    size = _log_size(storage, build_id, job)
    if index is None or (size is not None and size < index.scanned):
        index = LineIndex()  # none yet, damaged, or the log was replaced: start over
    before = index.scanned
    if size is None or size > index.scanned:
        pending = b""
        while chunk := storage.read_log(build_id, job, index.scanned + len(pending), _SCAN):
            pending += chunk
            pending = pending[index.extend(pending) :]
            if len(chunk) < _SCAN:
                break
    if path is not None and index.scanned != before and path.parent.is_dir():
        scratch = path.with_name(f".log.idx.{os.getpid()}.{threading.get_ident()}")
        scratch.write_bytes(index.to_bytes())
        os.replace(scratch, path)
    return index


def _total(storage: Storage, build_id: int, job: str, index: LineIndex) -> tuple[int, bool]:
    complete = storage.log_complete(build_id, job)
    total = index.lines
    if complete and storage.read_log(build_id, job, index.scanned, 1):
        total += 1  # a last line without its newline, in a finished log
    return total, complete


def count_lines(storage: Storage, build_id: int, job: str) -> int:
    """How many lines the log holds (whole lines only while it is being written)."""
    return _total(storage, build_id, job, load_index(storage, build_id, job))[0]


def _read(storage: Storage, build_id: int, job: str, index: LineIndex, first: int, last: int) -> list[str]:
    """Lines `first..last` (existing ones), reading from the nearest checkpoint on."""
    if last < first:
        return []
    offset, number = index.checkpoint(first)
    found: list[str] = []
    pending = b""
    while number <= last:
        chunk = storage.read_log(build_id, job, offset, BLOCK)
        if not chunk:
            break
        offset += len(chunk)
        pending += chunk
        *whole, pending = pending.split(b"\n")
        for raw in whole:
            if first <= number <= last:
                found.append(raw.decode("utf-8", "replace"))
            number += 1
            if number > last:
                return found
    if pending and number <= last and number >= first:
        found.append(pending.decode("utf-8", "replace"))
    return found


def read_lines(storage: Storage, build_id: int, job: str, start: int, count: int) -> LinePage:
    """Lines `start..start+count-1` (fewer at the end of the log; none beyond it)."""
    start = max(1, start)
    index = load_index(storage, build_id, job)
    total, complete = _total(storage, build_id, job, index)
    last = min(total, start + max(0, count) - 1)
    lines = _read(storage, build_id, job, index, start, last)
    return LinePage(total, start, lines, complete, _step(storage, build_id, job, index, start, lines))


def tail_lines(storage: Storage, build_id: int, job: str, count: int) -> LinePage:
    """The last `count` lines of the log."""
    index = load_index(storage, build_id, job)
    total, complete = _total(storage, build_id, job, index)
    start = max(1, total - max(0, count) + 1)
    lines = _read(storage, build_id, job, index, start, total)
    return LinePage(total, start, lines, complete, _step(storage, build_id, job, index, start, lines))


def _step(
    storage: Storage, build_id: int, job: str, index: LineIndex, start: int, lines: list[str]
) -> dict[str, Any] | None:
    """The step a page starts inside of, when its header is before the page (so the page can say so)."""
    header = index.step_before(start)
    if header is None or header == start or not lines:
        return None
    text = _read(storage, build_id, job, index, header, header)
    found = STEP_START.match(text[0].encode()) if text else None
    return {"line": header, "name": found.group(1).decode("utf-8", "replace")} if found else None


def line_offset(storage: Storage, build_id: int, job: str, line: int) -> tuple[int, int]:
    """`(offset, number)` of a line start at or before `line`: where to start reading to reach it."""
    return load_index(storage, build_id, job).checkpoint(max(1, line))
