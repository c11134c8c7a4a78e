"""`security.seccomp` through the whole engine: steps, services and image RUN steps, and the log line."""

from __future__ import annotations

import json
import os

import pytest
from security_helpers import log_lines, make_repo, run_dir, runner_exec

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("these tests run containers as root", allow_module_level=True)

PIPELINE = """
jobs:
  confined:
    image:
      from: host
      build:
        - run: grep ^Seccomp /proc/self/status > /seccomp-at-build
    services:
      side: {command: [sh, -c, "grep ^Seccomp /proc/self/status; sleep 30"]}
    steps:
      - cat /seccomp-at-build
      - grep ^Seccomp /proc/self/status
  relaxed:
    security: {seccomp: unconfined}
    image:
      from: host
      build:
        - run: grep ^Seccomp /proc/self/status > /seccomp-at-build
    services:
      side: {command: [sh, -c, "grep ^Seccomp /proc/self/status; sleep 30"]}
    steps:
      - cat /seccomp-at-build
      - grep ^Seccomp /proc/self/status
"""


def test_the_setting_reaches_steps_services_and_builds(tmp_path):
    repo = make_repo(tmp_path, PIPELINE)
    result = runner_exec(repo, home=tmp_path / "home")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    summary = json.loads((run_dir(repo) / "summary.json").read_text())
    assert {job["name"]: job["status"] for job in summary["jobs"]} == {
        "confined": "passed",
        "relaxed": "passed",
    }
    for job, mode in (("confined", "2"), ("relaxed", "0")):
        lines = log_lines(repo, job)
        seen = [line.split()[-1] for line in lines if "Seccomp:" in line]
        assert seen == [mode] * 3, (job, lines)  # the service, the build's RUN, the step
    notes = [line for line in log_lines(repo, "relaxed") if "security:" in line]
    assert notes == [
        "[runner] security: no syscall filter for this job (security.seccomp: unconfined in ci.yml)"
    ]
    assert not [line for line in log_lines(repo, "confined") if "syscall filter" in line]
