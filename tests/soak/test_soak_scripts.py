"""The soak scripts of benchmarks/ in their --quick modes (slow: kept out of the default run).

    python3 -m pytest -m slow tests/soak

The full runs (1,000 containers; 200 builds with a worker SIGKILLed every 20 s) are the scripts
themselves, run by hand: their figures go in the closing notes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.kernel]
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

if os.geteuid() != 0:
    pytest.skip("the soak scripts need root (namespaces, cgroups, overlayfs)", allow_module_level=True)


def soak(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_100_containers_of_every_kind_leak_nothing():
    done = soak("soak_containers.py", "--quick", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "soak_containers: no leaks" in done.stdout
    for kind in ("normal", "timeout", "oom", "killed"):
        assert f"{kind} ok" in done.stdout and f"{kind} WRONG" not in done.stdout


def test_the_leak_check_sees_what_an_unswept_killed_caller_leaves():
    done = soak("soak_containers.py", "-n", "10", "--no-sweep", timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    figures = {}
    for line in done.stdout.splitlines():
        for what in ("cgroups of this run", "RUNNER_HOME/run records", "RUNNER_HOME/tmp entries"):
            if line.startswith(f"  {what} "):
                figures[what] = int(line[len(what) + 2 :].split()[0])
    assert figures["cgroups of this run"] > 0, done.stdout
    assert figures["RUNNER_HOME/run records"] > 0 and figures["RUNNER_HOME/tmp entries"] > 0, done.stdout


def test_20_builds_with_workers_killed_every_8_s_finish_exactly_once():
    done = soak("soak_builds.py", "--quick", timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every build finished exactly once" in done.stdout
    assert "final commit statuses per build:" in done.stdout
