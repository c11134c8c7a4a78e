"""Reading stored logs by line number through the sparse line index (runner.logs.lines)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.logs import DirectoryStorage
from runner.logs.lines import BLOCK, LineIndex, count_lines, load_index, read_lines, tail_lines
from runner.logs.sse import stored_lines


class CountingStorage(DirectoryStorage):
    """DirectoryStorage that counts the log bytes it hands out (to prove what a read costs)."""

    bytes_read = 0

    def read_log(self, build_id: int, job: str, offset: int = 0, limit: int | None = None) -> bytes:
        data = super().read_log(build_id, job, offset, limit)
        self.bytes_read += len(data)
        return data


class MemoryStorage:
    """A Storage without files: the index is rebuilt in memory on every call."""

    def __init__(self, data: bytes, complete: bool = True) -> None:
        self.data, self.complete = data, complete

    def read_log(self, build_id: int, job: str, offset: int = 0, limit: int | None = None) -> bytes:
        return self.data[offset:] if limit is None else self.data[offset : offset + limit]

    def log_complete(self, build_id: int, job: str) -> bool:
        return self.complete


def write_lines(storage: DirectoryStorage, lines: list[str], job: str = "unit") -> None:
    storage.append_log(1, job, "".join(line + "\n" for line in lines))


def test_pages_from_the_start_the_middle_and_beyond_the_end(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    lines = [f"line {n} " + "x" * (n % 97) for n in range(1, 20001)]
    write_lines(storage, lines)
    page = read_lines(storage, 1, "unit", 1, 3)
    assert (page.total, page.start, page.lines) == (20000, 1, lines[:3])
    page = read_lines(storage, 1, "unit", 12345, 100)
    assert page.lines == lines[12344:12444] and page.last == 12444
    assert read_lines(storage, 1, "unit", 19999, 10).lines == lines[-2:]
    beyond = read_lines(storage, 1, "unit", 20001, 10)
    assert (beyond.total, beyond.start, beyond.lines) == (20000, 20001, [])
    assert read_lines(storage, 1, "unit", 0, 2).lines == lines[:2]  # start below 1 means the first line
    tail = tail_lines(storage, 1, "unit", 1000)
    assert (tail.start, tail.lines) == (19001, lines[-1000:])
    assert tail_lines(storage, 1, "unit", 0).lines == []


def test_no_log_yet_is_an_empty_page(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    assert tail_lines(storage, 7, "none", 100).as_json() == {
        "total": 0, "start": 1, "lines": [], "complete": False, "step": None,
    }  # fmt: skip
    assert not (tmp_path / "7").exists()  # reading never creates the job's directory


def test_a_growing_log_is_indexed_by_its_new_bytes_only(tmp_path: Path) -> None:
    storage = CountingStorage(tmp_path)
    write_lines(storage, [f"a{n}" for n in range(50000)])
    assert count_lines(storage, 1, "unit") == 50000
    storage.bytes_read = 0
    storage.append_log(1, "unit", "late\npartial")  # a line being written is not counted yet
    assert count_lines(storage, 1, "unit") == 50001
    assert storage.bytes_read < 100  # the index already covered the first 50,000 lines
    assert tail_lines(storage, 1, "unit", 2).lines == ["a49999", "late"]
    storage.mark_log_complete(1, "unit")
    assert tail_lines(storage, 1, "unit", 2).lines == ["late", "partial"]  # finished: the last line counts


def test_a_50_mb_log_answers_its_tail_without_reading_it(tmp_path: Path) -> None:
    storage = CountingStorage(tmp_path)
    line = "0123456789" * 10
    block = "".join(f"{line}\n" for _ in range(10000))  # 1 MB
    for _ in range(50):
        storage.append_log(1, "big", block)
    storage.mark_log_complete(1, "big")
    load_index(storage, 1, "big")  # once, as LogRecorder.end does
    storage.bytes_read = 0
    tail = tail_lines(storage, 1, "big", 1000)
    assert tail.total == 500000 and tail.start == 499001 and tail.lines == [line] * 1000
    assert storage.bytes_read <= 1000 * 101 + 3 * BLOCK
    storage.bytes_read = 0
    assert read_lines(storage, 1, "big", 250000, 5).lines == [line] * 5
    assert storage.bytes_read <= 3 * BLOCK
    storage.bytes_read = 0
    assert [n for n, _ in stored_lines(storage, 1, "big", 499999)] == [499999, 500000]
    assert storage.bytes_read <= 3 * BLOCK  # a resumed stream seeks, too


def test_a_damaged_or_stale_index_is_rebuilt(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    write_lines(storage, ["one", "two", "three"])
    index_file = storage.log_path(1, "unit").with_name("log.idx")
    load_index(storage, 1, "unit")
    index_file.write_bytes(b"garbage")
    assert tail_lines(storage, 1, "unit", 1).lines == ["three"]
    storage.log_path(1, "unit").write_text("fresh\n")  # shorter than what the index had scanned
    assert tail_lines(storage, 1, "unit", 5).lines == ["fresh"]


def test_long_lines_and_other_storages(tmp_path: Path) -> None:
    lines = ["short", "y" * (3 * BLOCK), "after", "é ünïcode"]
    data = "".join(line + "\n" for line in lines).encode()
    memory = MemoryStorage(data)
    assert read_lines(memory, 1, "j", 2, 3).lines == lines[1:]  # type: ignore[arg-type]
    assert tail_lines(memory, 1, "j", 1).lines == ["é ünïcode"]  # type: ignore[arg-type]
    storage = DirectoryStorage(tmp_path)
    write_lines(storage, lines)
    assert read_lines(storage, 1, "unit", 3, 1).lines == ["after"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="ab\n", max_size=40), max_size=8).map(lambda parts: "".join(parts).encode()),
    st.integers(1, 40),
    st.integers(0, 40),
)
def test_index_agrees_with_split(data: bytes, start: int, count: int) -> None:
    """Whatever the chunking, a page is exactly what splitting the whole log gives."""
    import runner.logs.lines as lines_module

    expected = data.split(b"\n")
    expected = expected[:-1] if expected and expected[-1] == b"" else expected
    old = lines_module.BLOCK
    lines_module.BLOCK = 7  # tiny blocks: many checkpoints, lines longer than a block
    try:
        page = read_lines(MemoryStorage(data), 1, "j", start, count)  # type: ignore[arg-type]
    finally:
        lines_module.BLOCK = old
    assert page.total == len(expected)
    assert page.lines == [e.decode() for e in expected[start - 1 : start - 1 + count]]


def test_index_round_trips_and_refuses_bad_bytes() -> None:
    index = LineIndex()
    index.extend(b"x" * (BLOCK + 5) + b"\n" + b"y\n")
    again = LineIndex.from_bytes(index.to_bytes())
    assert again is not None and (again.scanned, again.lines) == (BLOCK + 8, 2)
    assert list(again.offsets) == list(index.offsets) and list(again.numbers) == list(index.numbers)
    assert LineIndex.from_bytes(b"RLI2" + b"\0" * 28) is None
    assert LineIndex.from_bytes(index.to_bytes()[:-3]) is None


def test_pages_name_the_step_they_start_inside(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    lines = ["--- clone 0.1s", "--- step build it", *[f"b{n}" for n in range(3000)],
             "--- step build it: passed (exited, 1.0s)", "--- step test: all", "t1", "t2"]  # fmt: skip
    write_lines(storage, lines)
    index = load_index(storage, 1, "unit")
    assert list(index.steps) == [2, 3004]  # the closing line of a step is no header
    assert read_lines(storage, 1, "unit", 1, 5).step is None  # the page holds its headers itself
    assert read_lines(storage, 1, "unit", 2, 5).step is None
    assert read_lines(storage, 1, "unit", 500, 5).step == {"line": 2, "name": "build it"}
    assert tail_lines(storage, 1, "unit", 2).step == {"line": 3004, "name": "test: all"}
    again = LineIndex.from_bytes(storage.log_path(1, "unit").with_name("log.idx").read_bytes())
    assert again is not None and list(again.steps) == [2, 3004]


@pytest.mark.parametrize("count", [1, 999, 1000, 1001])
def test_tail_sizes(tmp_path: Path, count: int) -> None:
    storage = DirectoryStorage(tmp_path)
    write_lines(storage, [str(n) for n in range(1, 1001)])
    page = tail_lines(storage, 1, "unit", count)
    assert page.lines == [str(n) for n in range(max(1, 1001 - count), 1001)]
