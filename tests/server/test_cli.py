"""`runner serve` and `runner worker` fail with one line, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "RUNNER_HOME": str(tmp_path / "home"), **env}
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", *args], env=full, capture_output=True, text=True, timeout=60
    )


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("runner: error:")]
    assert result.returncode == 1 and len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


def test_serve_names_a_store_it_cannot_open(tmp_path):
    result = run(tmp_path, "serve", "--port", "0", RUNNER_DATABASE_URL="postgresql://nobody@127.0.0.1:1/x")
    assert "cannot open the build store" in one_error(result)


def test_serve_names_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(tmp_path, "serve", "--port", str(port))
    assert f"cannot listen on 127.0.0.1:{port}" in one_error(result)


def test_worker_names_a_store_directory_it_cannot_make(tmp_path):
    (tmp_path / "file").write_text("")
    result = run(tmp_path, "worker", RUNNER_DATABASE_URL=f"sqlite:///{tmp_path / 'file' / 'x.db'}")
    assert "cannot create the directory of the build store" in one_error(result)


def test_worker_sweeps_what_a_dead_runner_process_left_before_it_starts(tmp_path, redis_url):
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover = tmp_path / "home" / "tmp" / "upper-of-a-dead-job"
    leftover.mkdir(parents=True)
    run_dir = tmp_path / "home" / "run"
    run_dir.mkdir()
    record = {"pid": dead.pid, "start": "1", "cgroup": None, "tmp_dirs": [str(leftover)]}
    (run_dir / "rootfs-dead").write_text(json.dumps(record))
    full = {**os.environ, "RUNNER_HOME": str(tmp_path / "home"), "RUNNER_BROKER_URL": redis_url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "worker", "--concurrency", "1"], env=full,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert worker.stderr is not None
        first = worker.stderr.readline()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert first.startswith("runner: swept "), first  # ours, and any dead run's cgroups on this host
    assert not leftover.exists() and not (run_dir / "rootfs-dead").exists()
