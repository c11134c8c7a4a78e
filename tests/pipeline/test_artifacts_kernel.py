"""Artifacts and reports collected from what real steps wrote, also after a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_helpers import job, out, run

from runner.pipeline.events import ArtifactStored
from runner.pipeline.events import TestsCollected as Collected

pytestmark = pytest.mark.kernel

JUNIT = (
    '<testsuite name="s" tests="2"><testcase classname="m" name="ok"/>'
    '<testcase classname="m" name="bad"><failure message="no"/></testcase></testsuite>'
)


def test_artifacts_copied_and_symlink_out_refused(tmp_path: Path) -> None:
    script = (
        "mkdir -p dist reports && echo wheel > dist/pkg-1.0-py3-none-any.whl && echo skip > dist/readme.txt\n"
        f"echo '{JUNIT}' > reports/junit.xml\n"
        "ln -s /etc/passwd reports/passwd\n"
        "exit 1"
    )
    result, sink = run(
        tmp_path,
        job("build", script, artifacts=("dist/*.whl", "reports/"), reports_junit=("reports/*.xml",)),
    )
    jr = result.jobs["build"]
    assert jr.status == "failed"
    assert sorted(jr.artifacts) == ["dist/pkg-1.0-py3-none-any.whl", "reports/junit.xml"]
    root = tmp_path / "artifacts" / "build"
    assert (root / "dist" / "pkg-1.0-py3-none-any.whl").read_text() == "wheel\n"
    assert not (root / "reports" / "passwd").exists()
    assert not (root / "dist" / "readme.txt").exists()
    assert any("reports/passwd is a symlink to /etc/passwd" in line for line in out(sink, "build"))
    assert sorted(e.path for e in sink.of(ArtifactStored)) == sorted(jr.artifacts)
    tests = sink.of(Collected)
    assert len(tests) == 1 and tests[0].counts["total"] == 2 and tests[0].counts["failed"] == 1
    assert jr.tests["passed"] == 1
    json.dumps(result.to_dict())  # a summary.json can be written from the result
