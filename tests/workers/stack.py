"""The runner's server side as real processes for end-to-end tests: `runner serve` under uvicorn and
`runner worker` (Celery), sharing a RUNNER_HOME, a SQLite store and a real redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from helpers.redis_server import free_port
from server_helpers import SECRET, TOKEN, empty_database, encode, signed

FINISHED = {"passed", "failed", "error", "canceled", "skipped"}


class Stack:
    def __init__(self, tmp_path: Path, broker_url: str, **env: str) -> None:
        self.tmp_path = tmp_path
        self.home = tmp_path / "home"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "RUNNER_HOME": str(self.home),
            "RUNNER_DATABASE_URL": f"sqlite:///{self.home / 'runner.db'}",
            "RUNNER_BROKER_URL": broker_url,
            "RUNNER_WEBHOOK_SECRET": SECRET,
            "RUNNER_API_TOKEN": TOKEN,
            "RUNNER_PUBLIC_URL": self.url,
            "RUNNER_JOB_LEASE": "4",
            "RUNNER_ALLOW_LOCAL_REPOS": "1",  # the tests' repositories are served over file://
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        postgres = os.environ.get("RUNNER_TEST_POSTGRES_URL")
        if postgres:  # CI runs the whole stack on PostgreSQL too, from an empty database
            empty_database(postgres)
            self.env["RUNNER_DATABASE_URL"] = postgres
        self.server: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp_path / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen(
            [sys.executable, "-m", "runner.cli", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a SIGKILL takes the pool children too
        )

    def start_server(self) -> None:
        self.server = self._spawn("server", "serve", "--port", str(self.port))
        self.wait(lambda: self._healthy(), 30, "the web server to answer /healthz")

    def _healthy(self) -> bool:
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, name: str = "worker", queues: str = "runner") -> subprocess.Popen[bytes]:
        process = self._spawn(name, "worker", "--concurrency", "1", "--queues", queues)
        self.workers.append(process)
        log = self.tmp_path / f"{name}.log"
        self.wait(lambda: b" ready." in log.read_bytes(), 30, f"{name} to be ready")
        return process

    def stop_server(self) -> None:
        if self.server is not None:
            _stop(self.server)
            self.server = None

    def stop(self) -> None:
        self.client.close()
        for process in self.workers:
            _stop(process)
        self.stop_server()

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL a process and its pool children: a machine that died mid-job."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)

    # --- HTTP ---------------------------------------------------------------------------------

    def push(
        self, payload: dict[str, Any], forge: str = "github", delivery: str | None = None
    ) -> httpx.Response:
        body = encode(payload)
        return self.client.post(
            f"/hooks/{forge}", content=body, headers=signed(forge, body, delivery=delivery)
        )

    def post(self, path: str) -> httpx.Response:
        return self.client.post(path, headers={"Authorization": f"Bearer {TOKEN}"})

    def build(self, build_id: int) -> dict[str, Any]:
        response = self.client.get(f"/api/builds/{build_id}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def wait_build(self, build_id: int, timeout: float = 60) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def finished() -> bool:
            found.update(self.build(build_id))
            return found["status"] in FINISHED and found["finished_at"] is not None

        self.wait(finished, timeout, f"build {build_id} to finish")
        return found

    def wait_job(self, build_id: int, job: str, status: str, timeout: float = 30) -> None:
        def reached() -> bool:
            return any(j["name"] == job and j["status"] == status for j in self.build(build_id)["jobs"])

        self.wait(reached, timeout, f"job {job} of build {build_id} to be {status}")

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        logs = "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.tmp_path.glob("*.log"))
        )
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
