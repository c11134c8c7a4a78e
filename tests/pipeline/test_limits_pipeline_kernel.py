"""Limits through the whole path: a ci.yml's `resources:` compiled, run by the pipeline in real containers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pipeline_helpers import options, out, steps

from runner.config import EvalContext, compile_pipeline, load
from runner.pipeline import run_pipeline
from runner.pipeline.events import Collector
from runner.pipeline.job import DEFAULT_PIDS

pytestmark = pytest.mark.kernel


def run_yaml(tmp_path: Path, text: str):
    spec = compile_pipeline(load(Path("ci.yml"), text=text), EvalContext())
    sink = Collector()
    return run_pipeline(spec, options(tmp_path), sink), sink


def test_a_full_disk_fails_the_step_with_enospc_and_the_job_cleanly(tmp_path: Path) -> None:
    result, sink = run_yaml(
        tmp_path,
        "jobs:\n  fill:\n    network: none\n    resources: {disk: 64M}\n    steps:\n"
        "      - dd if=/dev/zero of=/var/big bs=1M count=100\n"
        "      - {name: after, when: always, run: 'df -k / | tail -1'}\n",
    )
    job = result.jobs["fill"]
    assert job.status == "failed", job.reason
    assert job.reason.startswith("step 'dd if=/dev/zero of=/var/big bs=1M count=100' exited with code 1"), (
        job.reason
    )
    assert any("No space left on device" in line for line in out(sink, "fill")), out(sink, "fill")
    assert steps(sink, "fill")["after"].status == "passed"  # the job's own disk, still usable (and full)
    assert out(sink, "fill", "after")[0].split()[4] in ("99%", "100%")
    assert not any((tmp_path / "home" / "tmp").glob("r*/disk.img"))  # discarded with the job


BOMB = (
    "python3 -c '\n"
    "import threading, time\n"
    "n = 0\n"
    "try:\n"
    "    while True:\n"
    "        threading.Thread(target=time.sleep, args=(30,), daemon=True).start(); n += 1\n"
    "except RuntimeError as e:\n"
    '    print("stopped after", n, e); raise SystemExit(3)\n'
    "'"
)


def test_the_default_pids_limit_stops_a_task_bomb_and_the_job_says_so(tmp_path: Path) -> None:
    started = time.monotonic()
    result, sink = run_yaml(
        tmp_path,
        f"jobs:\n  bomb:\n    network: none\n    steps:\n      - name: bomb\n        run: |\n{_indent(BOMB)}",
    )
    elapsed = time.monotonic() - started
    job = result.jobs["bomb"]
    assert job.status == "failed"
    assert job.reason == (
        f"step 'bomb' reached its limit of {DEFAULT_PIDS} tasks (resources.pids) and exited with code 3"
    )
    stopped = [line for line in out(sink, "bomb", "bomb") if line.startswith("stopped after")]
    assert stopped and DEFAULT_PIDS - 20 <= int(stopped[0].split()[2]) < DEFAULT_PIDS, stopped
    assert elapsed < 60  # stopped, not hanging (a generous bound)


def _indent(text: str) -> str:
    return "".join(f"          {line}\n" for line in text.splitlines())


def test_a_limit_the_host_cannot_apply_is_the_runners_error_naming_the_piece(
    tmp_path: Path, monkeypatch
) -> None:
    """This host's cgroup v2 hierarchy (beside v1) delegates no io controller: a job asking for io limits
    there errors, saying so, instead of running unthrottled."""
    from runner.sandbox import cgroups

    mount = next((Path(p) for p, fstype, _ in cgroups._mountinfo() if fstype == "cgroup2"), None)
    assert mount is not None, "no cgroup2 filesystem is mounted on this machine"
    monkeypatch.setattr(cgroups, "_driver", cgroups.V2Driver(mount))
    result, _ = run_yaml(
        tmp_path,
        "jobs:\n  io:\n    network: none\n    resources: {io: {write_bps: 1M}}\n    steps: [echo hi]\n",
    )
    job = result.jobs["io"]
    assert job.status == "error", job.reason
    assert job.reason.startswith("step 'echo hi' could not start: an io limit needs the io controller"), (
        job.reason
    )
    assert "does not delegate" in job.reason
