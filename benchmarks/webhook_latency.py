#!/usr/bin/env python3
"""Webhook to first log line and to build finished, and builds per second with two workers.

Everything real: a redis-server, `runner serve` (uvicorn) and two `runner worker` processes (Celery,
prefork) sharing a SQLite store under a throwaway RUNNER_HOME, a git repository served by file://,
a signed GitHub push per build, the job run in a container by the engine.

  latency     N builds one after another (a new commit each, so each webhook fetches into the
              mirror): webhook -> first live log line (SSE), webhook -> build finished; p50/p95.
  throughput  B builds posted at once (each on its own branch, so none supersedes another):
              builds finished per second.

Goals (issue 5): p50 webhook->finished <= 300 ms, >= 20 builds/s. Hosted peers (GitHub Actions,
GitLab.com, Woodpecker) cannot run here; their typical queue-to-start times are seconds, so the
figures are printed beside the goals as ratios.

Usage: python3 benchmarks/webhook_latency.py [-n 30] [-b 200] [--concurrency 2]   (as root)
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

SECRET = "bench"
CI = "jobs:\n  hello:\n    steps:\n      - run: echo hello\n"
FINISHED = {"passed", "failed", "error", "canceled", "skipped"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@x"}  # fmt: skip
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env,
                          check=True).stdout.strip()  # fmt: skip


def payload(repo: Path, sha: str, branch: str) -> bytes:
    return json.dumps({
        "ref": f"refs/heads/{branch}", "before": "0" * 40, "after": sha, "created": False, "deleted": False,
        "repository": {"full_name": "bench/repo", "clone_url": f"file://{repo}"},
        "head_commit": {"id": sha, "message": "bench", "author": {"name": "b"}}, "pusher": {"name": "b"},
    }).encode()  # fmt: skip


def headers(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}  # fmt: skip


class Stack:
    def __init__(self, root: Path, concurrency: int) -> None:
        self.root = root
        self.processes: list[subprocess.Popen[bytes]] = []
        redis_port, self.port = free_port(), free_port()
        (root / "redis").mkdir()
        redis = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                 "--dir", str(root / "redis"), "--appendonly", "yes"]  # fmt: skip
        self._spawn("redis", redis)
        self.env = {**os.environ, "RUNNER_HOME": str(root / "home"), "RUNNER_WEBHOOK_SECRET": SECRET,
                    "RUNNER_ALLOW_LOCAL_REPOS": "1",  # the repository is served over file://
                    "RUNNER_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0"}  # fmt: skip
        runner = [sys.executable, "-m", "runner.cli"]
        self._spawn("server", [*runner, "serve", "--port", str(self.port)])
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        self._wait(lambda: self._ok("/healthz"), "the server")
        for name in ("w1", "w2"):
            self._spawn(name, [*runner, "worker", "--concurrency", str(concurrency)])
        self._wait(
            lambda: all(b" ready." in (root / f"{n}.log").read_bytes() for n in ("w1", "w2")), "workers"
        )

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        env = getattr(self, "env", None)
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                               start_new_session=True))  # fmt: skip

    def _ok(self, path: str) -> bool:
        try:
            return self.client.get(path).status_code == 200
        except httpx.HTTPError:
            return False

    def _wait(self, condition: Any, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"webhook_latency: {what} did not start (logs in {self.root})")
            time.sleep(0.05)

    def stop(self) -> None:
        self.client.close()
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def post(self, body: bytes) -> int:
        response = self.client.post("/hooks/github", content=body, headers=headers(body))
        if response.status_code != 202:
            raise SystemExit(f"webhook_latency: the webhook answered {response.status_code}: {response.text}")
        return int(response.json()["build_id"])

    def status(self, build_id: int) -> str:
        return str(self.client.get(f"/api/builds/{build_id}").json()["status"])


def latency(stack: Stack, repo: Path, n: int) -> tuple[list[float], list[float]]:
    first_line, finished = [], []
    for i in range(n + 2):  # two warm-up builds: the mirror clone and the first container
        sha = (git(repo, "commit", "-q", "--allow-empty", "-m", f"b{i}"), git(repo, "rev-parse", "HEAD"))[1]
        start = time.perf_counter()
        build_id = stack.post(payload(repo, sha, "main"))
        seen = None
        with stack.client.stream("GET", f"/api/builds/{build_id}/jobs/hello/log/stream") as response:
            for line in response.iter_lines():
                if seen is None and line.startswith("data: {") and '"text"' in line:
                    seen = time.perf_counter()
                if line.startswith("event: end"):
                    break
        while stack.status(build_id) not in FINISHED:
            time.sleep(0.002)
        done = time.perf_counter()
        if stack.status(build_id) != "passed":
            raise SystemExit(f"webhook_latency: build {build_id} did not pass")
        if i >= 2:
            first_line.append(((seen or done) - start) * 1000)
            finished.append((done - start) * 1000)
    return first_line, finished


def throughput(stack: Stack, repo: Path, count: int) -> float:
    sha = git(repo, "rev-parse", "HEAD")
    bodies = [payload(repo, sha, f"branch-{i}") for i in range(count)]
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(stack.post, bodies))
    last = max(ids)
    while True:
        builds = stack.client.get("/api/builds", params={"limit": 500}).json()
        mine = [b for b in builds if ids[0] <= b["id"] <= last]
        if len(mine) == count and all(b["status"] in FINISHED for b in mine):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    failed = [b["id"] for b in mine if b["status"] != "passed"]
    if failed:
        raise SystemExit(f"webhook_latency: builds {failed[:5]} did not pass")
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=30, help="builds for the latency figures")
    parser.add_argument("-b", type=int, default=200, help="builds queued at once for the throughput")
    parser.add_argument("--concurrency", type=int, default=2, help="jobs at once per worker")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("redis-server") is None:
        print("webhook_latency: needs root (containers) and redis-server", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "ci.yml").write_text(CI)
    git(repo, "add", "ci.yml")
    git(repo, "commit", "-q", "-m", "ci")
    stack = Stack(root, args.concurrency)
    try:
        first, done = latency(stack, repo, args.n)
        rate = throughput(stack, repo, args.b)
    finally:
        stack.stop()
    shutil.rmtree(root, ignore_errors=True)
    p50 = statistics.median(done)
    print(f"one-step builds, {args.n} in a row (ms)   p50      p95")
    print(f"  webhook -> first log line           {statistics.median(first):7.1f}  {pct(first, 0.95):7.1f}")
    print(
        f"  webhook -> build finished           {p50:7.1f}  {pct(done, 0.95):7.1f}   goal <= 300 ms p50: "
        f"{p50 / 300:.2f}x of the budget"
    )
    print(
        f"{args.b} builds at once, 2 workers x {args.concurrency}:  {rate:.1f} builds/s   goal >= 20: "
        f"{rate / 20:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
