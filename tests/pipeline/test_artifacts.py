"""Artifact globbing and symlink-safe copying (a real directory tree, no containers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.pipeline.artifacts import collect, compile_glob, job_dirname


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("dist/*.whl", "dist/a-1.0.whl", True),
        ("dist/*.whl", "dist/sub/a.whl", False),
        ("dist/*.whl", "dist/a.tar.gz", False),
        ("reports/", "reports/junit.xml", True),
        ("reports/", "reports/deep/x.xml", True),
        ("reports", "reports/x.xml", True),
        ("reports/", "reportsx/x.xml", False),
        ("**/*.xml", "a/b/c.xml", True),
        ("**/*.xml", "c.xml", True),
        ("./out/?.txt", "out/a.txt", True),
        ("out/[ab].txt", "out/b.txt", True),
        ("out/[!ab].txt", "out/b.txt", False),
        ("out/[!ab].txt", "out/c.txt", True),
    ],
)
def test_compile_glob(pattern: str, path: str, matches: bool) -> None:
    regex = compile_glob(pattern)
    assert regex is not None
    assert bool(regex.fullmatch(path)) is matches


@pytest.mark.parametrize("pattern", ["/etc/passwd", "../x", "a/../../b", ""])
def test_patterns_leaving_the_workspace_are_refused(pattern: str) -> None:
    assert compile_glob(pattern) is None


def test_job_dirname_is_one_component() -> None:
    assert job_dirname("test (os: ubuntu/22)") == "test (os: ubuntu_22)"
    assert job_dirname("..") == "_.."


def test_collect_copies_matches_and_skips_symlinks_out(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "dist").mkdir(parents=True)
    (ws / "dist" / "pkg.whl").write_bytes(b"wheel")
    (ws / "dist" / "notes.txt").write_text("no")
    (ws / "reports" / "deep").mkdir(parents=True)
    (ws / "reports" / "junit.xml").write_text("<x/>")
    (ws / "reports" / "deep" / "more.xml").write_text("<y/>")
    (ws / "reports" / "passwd").symlink_to("/etc/passwd")
    (ws / "reports" / "up").symlink_to("../../outside")
    (tmp_path / "outside").write_text("private")
    (ws / "reports" / "alias.xml").symlink_to("junit.xml")  # inside: copied as a file
    (ws / "reports" / "etcdir").symlink_to("/etc")
    dest = tmp_path / "out"
    got = collect(ws, ["dist/*.whl", "reports/", "missing/*.zip"], dest)
    stored = dict(got.stored)
    assert stored == {
        "dist/pkg.whl": 5,
        "reports/alias.xml": 4,
        "reports/deep/more.xml": 4,
        "reports/junit.xml": 4,
    }
    assert (dest / "reports" / "alias.xml").read_text() == "<x/>"
    assert not (dest / "reports" / "alias.xml").is_symlink()
    assert not (dest / "reports" / "passwd").exists()
    assert not (dest / "reports" / "up").exists()
    assert not (dest / "reports" / "etcdir").exists()
    text = "\n".join(got.warnings)
    assert "reports/passwd is a symlink to /etc/passwd, outside the workspace; skipped" in text
    assert "reports/up is a symlink" in text
    assert "'missing/*.zip' matched no file" in text


def test_collect_does_not_descend_through_a_symlinked_directory(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    (secret_dir / "key.pem").write_text("KEY")
    os.symlink(secret_dir, ws / "out")
    got = collect(ws, ["out/*.pem", "**/*.pem"], tmp_path / "dest")
    assert got.stored == []
    assert not (tmp_path / "dest" / "out" / "key.pem").exists()


def test_collect_drops_setuid_bits(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    tool = ws / "tool"
    tool.write_text("#!/bin/sh\n")
    os.chmod(tool, 0o4755)
    collect(ws, ["tool"], tmp_path / "dest")
    assert (tmp_path / "dest" / "tool").stat().st_mode & 0o7777 == 0o755
