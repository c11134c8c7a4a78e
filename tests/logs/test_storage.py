"""DirectoryStorage: logs, artifacts, job names made safe, and refused paths."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.logs import ArtifactNotFound, DirectoryStorage, StorageError, UnsafePath, encode_name

MATRIX = "test (py: 3.12)"


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ("build", "build"),
        (MATRIX, "test%20(py%3A%203.12)"),
        ("a/b", "a%2Fb"),
        ("..", "%2E."),
        (".hidden", "%2Ehidden"),
        ("ünï", "%C3%BCn%C3%AF"),
        ("a~b", "a%7Eb"),
    ],
)
def test_encode_name(job: str, expected: str) -> None:
    assert encode_name(job) == expected


@given(st.text(min_size=1, max_size=300), st.text(min_size=1, max_size=300))
def test_encoded_names_are_safe_and_distinct(first: str, second: str) -> None:
    for name in (first, second):
        encoded = encode_name(name)
        assert "/" not in encoded and "\0" not in encoded and not encoded.startswith(".")
        assert 0 < len(encoded.encode()) <= 200
    if first != second:
        assert encode_name(first) != encode_name(second)


def test_empty_job_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        encode_name("")
    with pytest.raises(StorageError):
        DirectoryStorage(tmp_path).job_dir(-1, "x")


def test_logs_append_and_read_ranges(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path / "store")
    assert storage.read_log(1, MATRIX) == b""
    storage.append_log(1, MATRIX, "hello\n")
    storage.append_log(1, MATRIX, "wörld\n")
    assert storage.read_log(1, MATRIX) == "hello\nwörld\n".encode()
    assert storage.read_log(1, MATRIX, offset=6) == "wörld\n".encode()
    assert storage.read_log(1, MATRIX, offset=6, limit=1) == b"w"
    assert storage.read_log(1, MATRIX, offset=1000) == b""
    path = storage.log_path(1, MATRIX)
    assert path == tmp_path / "store" / "1" / "test%20(py%3A%203.12)" / "log.txt"
    assert not storage.log_complete(1, MATRIX)
    storage.mark_log_complete(1, MATRIX)
    assert storage.log_complete(1, MATRIX)
    with pytest.raises(StorageError):
        storage.read_log(1, MATRIX, offset=-1)


def test_concurrent_appends_keep_lines_whole(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    line = "x" * 3000

    def write(tag: int) -> None:
        for number in range(200):
            storage.append_log(5, "job", f"{tag}:{number}:{line}\n")

    threads = [threading.Thread(target=write, args=(tag,)) for tag in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = storage.read_log(5, "job").decode().splitlines()
    assert len(lines) == 800
    assert all(entry.endswith(line) and entry.count(":") == 2 for entry in lines)


def test_default_root_is_under_runner_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / "home"))
    assert DirectoryStorage().root == tmp_path / "home" / "storage"


def test_artifacts_put_list_open(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path / "store")
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04" + bytes(1000))
    reports = tmp_path / "reports"
    (reports / "sub").mkdir(parents=True)
    (reports / "junit.xml").write_text("<testsuites/>")
    (reports / "sub" / "more.xml").write_text("<testsuite/>")
    storage.put_artifact(2, MATRIX, "dist/pkg-1.0-py3-none-any.whl", wheel)
    storage.put_artifact(2, MATRIX, "./reports", reports)
    assert storage.list_artifacts(2, MATRIX) == [
        ("dist/pkg-1.0-py3-none-any.whl", 1004),
        ("reports/junit.xml", 13),
        ("reports/sub/more.xml", 12),
    ]
    opened = storage.open_artifact(2, MATRIX, "reports/sub/more.xml")
    assert opened.read_text() == "<testsuite/>"
    assert oct(opened.stat().st_mode & 0o777) == oct(0o644)
    storage.put_artifact(2, MATRIX, "reports/junit.xml", wheel)  # replaced whole
    assert storage.open_artifact(2, MATRIX, "reports/junit.xml").read_bytes() == wheel.read_bytes()
    assert storage.list_artifacts(2, "other") == []
    storage.delete_build(2)
    assert storage.list_artifacts(2, MATRIX) == []


@pytest.mark.parametrize("relpath", ["../escape", "a/../../b", "/etc/passwd", "", ".", "a\\..\\b", "nul\0"])
def test_unsafe_artifact_paths_are_refused(tmp_path: Path, relpath: str) -> None:
    storage = DirectoryStorage(tmp_path / "store")
    src = tmp_path / "f"
    src.write_text("x")
    with pytest.raises(UnsafePath):
        storage.put_artifact(1, "job", relpath, src)
    with pytest.raises(UnsafePath):
        storage.open_artifact(1, "job", relpath)
    assert not (tmp_path / "escape").exists()


def test_missing_and_escaping_artifacts_are_not_found(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path / "store")
    src = tmp_path / "f"
    src.write_text("x")
    storage.put_artifact(1, "job", "real.txt", src)
    with pytest.raises(ArtifactNotFound):
        storage.open_artifact(1, "job", "missing.txt")
    with pytest.raises(ArtifactNotFound):
        storage.open_artifact(1, "job", "real.txt/below")
    root = storage.job_dir(1, "job") / "artifacts"
    os.symlink(tmp_path / "f", root / "sneaky")  # planted by hand: storage never makes links
    with pytest.raises(ArtifactNotFound):
        storage.open_artifact(1, "job", "sneaky")
    assert [name for name, _ in storage.list_artifacts(1, "job")] == ["real.txt"]
    with pytest.raises(StorageError):
        storage.put_artifact(1, "job", "x", tmp_path / "does-not-exist")
