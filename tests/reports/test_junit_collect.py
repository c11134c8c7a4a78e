"""Collecting a job's reports by glob: the workspace is a wall, broken files are warnings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from runner.reports import collect, counts

PASSING = '<testsuite name="{suite}"><testcase classname="k" name="{name}"/></testsuite>'


def _write(path: Path, suite: str = "s", name: str = "t") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PASSING.format(suite=suite, name=name))
    return path


def test_globs_collect_and_tag_the_job(tmp_path: Path, data: Path) -> None:
    shutil.copy(data / "pytest-xunit2.xml", tmp_path / "junit-unit.xml")
    _write(tmp_path / "reports" / "a.xml", suite="a")
    _write(tmp_path / "pkg" / "deep" / "junit-deep.xml", suite="deep")
    cases, warnings = collect(tmp_path, ["reports/*.xml", "**/junit*.xml"], "test (py: 3.12)")
    assert warnings == []
    assert counts(cases)["total"] == 9
    assert {c.job for c in cases} == {"test (py: 3.12)"}
    assert [c.suite for c in cases if c.suite != "pytest"] == ["deep", "a"]  # sorted by path: pkg/ < reports/


def test_a_file_matched_twice_counts_once(tmp_path: Path) -> None:
    _write(tmp_path / "reports" / "junit.xml")
    cases, warnings = collect(tmp_path, ["reports/*.xml", "**/junit.xml", "reports/junit.xml"], "j")
    assert (len(cases), warnings) == (1, [])


def test_symlink_out_of_the_workspace_is_skipped_with_a_warning(tmp_path: Path) -> None:
    outside = _write(tmp_path / "outside" / "secret.xml", name="outside")
    workspace = tmp_path / "ws"
    _write(workspace / "reports" / "good.xml", name="inside")
    (workspace / "reports" / "evil.xml").symlink_to(outside)
    (workspace / "linked-dir").symlink_to(outside.parent, target_is_directory=True)
    cases, warnings = collect(workspace, ["reports/*.xml", "linked-dir/*.xml"], "j")
    assert [c.name for c in cases] == ["inside"]
    assert warnings == [
        "linked-dir/secret.xml: skipped: it is a link to a place outside the workspace",
        "reports/evil.xml: skipped: it is a link to a place outside the workspace",
    ]


def test_symlink_inside_the_workspace_is_followed(tmp_path: Path) -> None:
    real = _write(tmp_path / "build" / "out.xml", name="real")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "link.xml").symlink_to(real)
    cases, warnings = collect(tmp_path, ["reports/*.xml"], "j")
    assert ([c.name for c in cases], warnings) == (["real"], [])


def test_a_broken_file_is_a_warning_and_the_rest_still_count(tmp_path: Path, data: Path) -> None:
    _write(tmp_path / "reports" / "a.xml", name="fine")
    shutil.copy(data / "billion-laughs.xml", tmp_path / "reports" / "b.xml")
    shutil.copy(data / "truncated.xml", tmp_path / "reports" / "c.xml")
    cases, warnings = collect(tmp_path, ["reports/*.xml"], "j")
    assert [c.name for c in cases] == ["fine"]
    assert warnings == [
        "reports/b.xml: refused: the file declares a DTD (<!DOCTYPE ...>); "
        "test reports never need one; skipped",
        "reports/c.xml: not well-formed XML at line 5, column 1: no element found; skipped",
    ]


def test_fifo_and_broken_link_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    os.mkfifo(tmp_path / "reports" / "pipe.xml")
    (tmp_path / "reports" / "dangling.xml").symlink_to(tmp_path / "reports" / "gone.xml")
    cases, warnings = collect(tmp_path, ["reports/*.xml"], "j")
    assert cases == []
    assert warnings == [
        "reports/dangling.xml: skipped: cannot read it: No such file or directory",
        "reports/pipe.xml: skipped: not a regular file",
    ]


def test_a_directory_match_takes_the_xml_files_below_it(tmp_path: Path) -> None:
    _write(tmp_path / "reports" / "one.xml", name="one")
    _write(tmp_path / "reports" / "sub" / "two.xml", name="two")
    (tmp_path / "reports" / "notes.txt").write_text("not a report")
    cases, warnings = collect(tmp_path, ["reports"], "j")
    assert ([c.name for c in cases], warnings) == (["one", "two"], [])


def test_earlier_run_output_and_git_are_never_collected(tmp_path: Path) -> None:
    _write(tmp_path / ".runner" / "runs" / "1" / "junit.xml", name="old merged")
    _write(tmp_path / ".git" / "junit.xml", name="git")
    _write(tmp_path / "junit.xml", name="fresh")
    cases, warnings = collect(tmp_path, ["**/junit*.xml"], "j")
    assert ([c.name for c in cases], warnings) == (["fresh"], [])


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("/etc/*.xml", "must be relative to the workspace"),
        ("../*.xml", "must not contain '..'"),
        ("reports/../../x.xml", "must not contain '..'"),
        ("  ", "empty pattern"),
    ],
)
def test_patterns_that_leave_the_workspace_are_refused(tmp_path: Path, pattern: str, problem: str) -> None:
    cases, warnings = collect(tmp_path, [pattern], "j")
    assert cases == []
    assert warnings == [f"report pattern {pattern!r}: {problem}"]


def test_a_pattern_matching_nothing_warns(tmp_path: Path) -> None:
    assert collect(tmp_path, ["reports/*.xml"], "j") == (
        [],
        ["report pattern 'reports/*.xml': no files match"],
    )


def test_a_link_to_a_file_already_matched_counts_once(tmp_path: Path) -> None:
    real = _write(tmp_path / "reports" / "a.xml", name="once")
    (tmp_path / "reports" / "b.xml").symlink_to(real)
    cases, warnings = collect(tmp_path, ["reports/*.xml"], "j")
    assert ([c.name for c in cases], warnings) == (["once"], [])
