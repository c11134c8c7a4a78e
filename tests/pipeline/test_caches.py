"""The cache store: keys to directories, atomic first-wins saves, LRU eviction within a budget."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from runner.pipeline.caches import (
    CacheStore,
    container_path,
    entry_name,
    max_bytes,
    restore_script,
    save_script,
)


def save(store: CacheStore, key: str, size: int, marker: str = "") -> object:
    scratch = store.scratch()
    (scratch / "data" / "0").write_bytes(b"x" * size)
    if marker:
        (scratch / "data" / "marker").write_text(marker)
    return store.commit(key, ("/root/.cache/pip",), scratch)


def test_entry_names_are_short_safe_and_distinct() -> None:
    a, b = entry_name("pip-../../etc"), entry_name("pip-..//..-etc")
    assert "/" not in a and not a.startswith(".") and a != b
    assert len(entry_name("k" * 500)) < 64


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 5 << 30), ("1000", 1000), ("10M", 10 << 20), ("2GiB", 2 << 30), ("3k", 3 << 10), ("junk", 5 << 30)],
)
def test_max_bytes_from_environment(monkeypatch: pytest.MonkeyPatch, value: str, expected: int) -> None:
    monkeypatch.setenv("RUNNER_CACHE_MAX_BYTES", value)
    assert max_bytes() == expected


def test_miss_then_hit(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "caches", budget=1 << 20)
    assert store.lookup("k") is None
    entry = save(store, "k", 100)
    assert entry is not None
    found = store.lookup("k")
    assert found is not None and found.size == 100 and found.paths == ("/root/.cache/pip",)
    assert (found.data / "0").read_bytes() == b"x" * 100
    assert os.stat(tmp_path / "caches").st_mode & 0o777 == 0o700


def test_first_save_wins_and_loser_leaves_nothing(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "caches", budget=1 << 20)
    assert save(store, "k", 10, "first") is not None
    assert save(store, "k", 10, "second") is None
    found = store.lookup("k")
    assert found is not None and (found.data / "marker").read_text() == "first"
    assert [p.name for p in (tmp_path / "caches").iterdir() if p.name.startswith(".tmp")] == []


def test_concurrent_saves_of_one_key_publish_exactly_one(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "caches", budget=1 << 30)
    winners: list[object] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        scratch = store.scratch()
        (scratch / "data" / "0").write_text(str(i) * 1000)
        barrier.wait()
        winners.append(store.commit("same", ("a",), scratch))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(w is not None for w in winners) == 1
    entry = store.lookup("same")
    assert entry is not None
    content = (entry.data / "0").read_text()
    assert len(set(content)) == 1 and len(content) == 1000  # one whole save, never a mix
    assert sorted(p.name for p in (tmp_path / "caches").iterdir()) == [".lock", entry_name("same")]


def test_lru_eviction_keeps_recently_used(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "caches", budget=250)
    save(store, "old", 100)
    time.sleep(0.01)
    save(store, "used", 100)
    time.sleep(0.01)
    assert store.lookup("old") is not None  # touching "old" makes "used" the least recently used
    time.sleep(0.01)
    save(store, "new", 100)  # 300 > 250: one entry must go
    assert store.lookup("used") is None
    assert store.lookup("old") is not None
    assert store.lookup("new") is not None


def test_an_entry_larger_than_the_budget_is_not_kept(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "caches", budget=50)
    save(store, "huge", 100)
    assert store.lookup("huge") is None


def test_scripts_quote_paths_and_map_relative_paths_into_the_workspace() -> None:
    assert container_path("node_modules") == "/workspace/node_modules"
    assert container_path("/root/.cache/pip/") == "/root/.cache/pip"
    script = save_script(("/root/it's here", "build"))
    assert "'/root/it'\"'\"'s here'" in script and "/workspace/build" in script
    restore = restore_script(("/a", "/b"), ("/b", "/c"))
    assert "/run/runner-cache/1" in restore and "/run/runner-cache/0" not in restore and "/c" not in restore


def test_sweep_removes_only_stale_scratch_dirs(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "caches", budget=1 << 20)
    save(store, "kept", 10)
    stale, fresh = store.scratch(), store.scratch()
    old = time.time() - 2 * 24 * 3600
    os.utime(stale, (old, old))
    store.sweep()
    assert not stale.exists() and fresh.exists()
    assert store.lookup("kept") is not None
