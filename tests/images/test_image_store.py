"""The local store: layers made once under a lock, images and tags, rm, LRU prune, several processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from runner.images.digest import sha256_bytes
from runner.images.errors import ImageError
from runner.images.reference import parse_ref
from runner.images.store import LayerRecord, Store, layer_name
from runner.settings import Paths


def lid(n: int) -> str:
    return sha256_bytes(f"layer {n}".encode())


def maker(size: int = 4096, marker: Path | None = None, delay: float = 0.0):  # type: ignore[no-untyped-def]
    def make(dest: Path) -> LayerRecord:
        if marker is not None:
            with open(marker, "a") as f:
                f.write(f"{os.getpid()}\n")
        time.sleep(delay)
        work = dest.parent.parent / "tmp" / f"w{os.getpid()}{time.monotonic_ns()}"
        work.mkdir(parents=True)
        (work / "data").write_bytes(b"x" * size)
        os.rename(work, dest)
        return LayerRecord(id="", name="", diff_id=None)

    return make


def config(n: int, layers: list[str]) -> bytes:
    return json.dumps({"n": n, "rootfs": {"type": "layers", "diff_ids": layers}}).encode()


def test_layer_made_once_and_recorded(store: Store) -> None:
    calls: list[Path] = []

    def make(dest: Path) -> LayerRecord:
        calls.append(dest)
        return maker()(dest)

    first = store.ensure_layer(lid(1), make)
    second = store.ensure_layer(lid(1), make)
    assert len(calls) == 1 and first.id == second.id == lid(1)
    assert store.layer_path(lid(1)) == store.paths.layers / layer_name(lid(1))
    assert len(layer_name(lid(1))) == 16
    assert first.size >= 4096 and first.last_used > 0
    assert (store.layer_path(lid(1)) / "data").read_bytes() == b"x" * 4096


def test_failed_make_leaves_nothing_and_is_retried(store: Store) -> None:
    def broken(dest: Path) -> LayerRecord:
        raise ImageError("download failed")

    with pytest.raises(ImageError, match="download failed"):
        store.ensure_layer(lid(2), broken)
    assert store.layer(lid(2)) is None and not store.layer_path(lid(2)).exists()
    assert store.ensure_layer(lid(2), maker()).id == lid(2)


def test_directory_without_record_is_redone(store: Store) -> None:
    store.layer_path(lid(3)).mkdir(parents=True)  # as a crash between rename and record leaves it
    (store.layer_path(lid(3)) / "stale").write_text("half")
    store.ensure_layer(lid(3), maker())
    assert sorted(os.listdir(store.layer_path(lid(3)))) == ["data"]


def _child(home: str, marker: str, layer_id: str) -> None:
    record = Store(Paths(Path(home))).ensure_layer(layer_id, maker(marker=Path(marker), delay=0.5))
    assert record.id == layer_id


def test_processes_wait_for_a_layer_being_made(paths: Paths, tmp_path: Path) -> None:
    Store(paths)
    marker = tmp_path / "made"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child, args=(str(paths.home), str(marker), lid(4))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len(marker.read_text().split()) == 1  # one process made it, the others waited and used it
    assert Store(paths).layer(lid(4)) is not None


def test_images_tags_and_resolution(store: Store) -> None:
    for n in (1, 2):
        store.ensure_layer(lid(n), maker())
    record = store.put_image(
        config(1, [lid(1), lid(2)]), [lid(1), lid(2)], repo_digests=[f"localhost/a@{lid(9)}"]
    )
    store.tag(parse_ref("localhost/a:1"), record.id)
    assert store.resolve("localhost/a:1").id == record.id
    assert store.resolve(record.id).id == record.id
    assert store.resolve(record.id.partition(":")[2][:12]).id == record.id
    assert store.resolve(f"localhost/a@{lid(9)}").id == record.id
    assert store.resolve("localhost/a:1").config["n"] == 1
    with pytest.raises(ImageError, match="no image 'localhost/a:2'"):
        store.resolve("localhost/a:2")
    before = store.layer(lid(1))
    assert before is not None
    time.sleep(0.01)
    _, paths = store.use("localhost/a:1")
    assert paths == [store.layer_path(lid(2)), store.layer_path(lid(1))]  # top first
    after = store.layer(lid(1))
    assert after is not None and after.last_used > before.last_used


def test_put_image_refuses_missing_layers(store: Store) -> None:
    with pytest.raises(ImageError, match="not in the store"):
        store.put_image(config(1, [lid(7)]), [lid(7)])


def _image(store: Store, n: int, layers: list[int], tag: str | None) -> str:
    ids = [lid(x) for x in layers]
    for x in layers:
        store.ensure_layer(lid(x), maker(size=10_000 * x))
    record = store.put_image(config(n, ids), ids)
    if tag:
        store.tag(parse_ref(tag), record.id)
    return record.id


def test_rm_untags_then_deletes_unshared_layers(store: Store) -> None:
    a = _image(store, 1, [1, 2], "localhost/a:1")
    store.tag(parse_ref("localhost/a:2"), a)
    _image(store, 2, [1, 3], "localhost/b:1")
    assert store.remove("localhost/a:1") == ["localhost/a:1"]
    assert store.resolve("localhost/a:2").id == a  # still tagged: nothing deleted
    removed = store.remove("localhost/a:2")
    assert removed == ["localhost/a:2", a]
    assert store.layer(lid(2)) is None and not store.layer_path(lid(2)).exists()
    assert store.layer(lid(1)) is not None  # shared with b
    with pytest.raises(ImageError):
        store.remove("localhost/a:2")


def test_prune_least_recently_used_first_never_tagged(store: Store) -> None:
    _image(store, 1, [1], None)
    time.sleep(0.01)
    _image(store, 2, [2], None)
    time.sleep(0.01)
    _image(store, 3, [3], "localhost/keep:1")
    time.sleep(0.01)
    store.use(_image(store, 4, [4], None))  # used last
    size = {n: store.layer(lid(n)).size for n in (1, 2, 3, 4)}  # type: ignore[union-attr]
    assert store.prune(10**12) == (0, 0)
    removed, freed = store.prune(size[3] + size[4] + size[2])  # only the oldest must go
    assert (removed, freed) == (1, size[1])
    assert store.layer(lid(1)) is None and store.layer(lid(2)) is not None
    removed, freed = store.prune(0)
    assert (removed, freed) == (2, size[2] + size[4])
    assert store.layer(lid(3)) is not None  # tagged
    assert [r.id for r in store.images()] == [store.resolve("localhost/keep:1").id]


def test_leased_image_is_kept_from_rm_and_prune(store: Store) -> None:
    image_id = _image(store, 1, [1, 2], "localhost/busy:1")
    with store.lease("localhost/busy:1") as (record, paths):
        assert record.id == image_id and paths == [store.layer_path(lid(2)), store.layer_path(lid(1))]
        assert store.remove("localhost/busy:1") == ["localhost/busy:1"]  # untagged, not deleted
        assert store.prune(0) == (0, 0)
        assert all(p.is_dir() for p in paths)
    removed, _ = store.prune(0)
    assert removed == 2 and store.images() == []


def test_prune_waits_for_an_image_being_added(store: Store) -> None:
    import threading

    _image(store, 1, [1], None)
    done = threading.Event()
    with store.adding():
        worker = threading.Thread(target=lambda: (store.prune(0), done.set()))
        worker.start()
        assert not done.wait(0.5)  # blocked while something is being added
    worker.join(timeout=10)
    assert done.is_set() and store.layer(lid(1)) is None
