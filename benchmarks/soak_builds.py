#!/usr/bin/env python3
"""Soak: builds over two workers while one of them is SIGKILLed every 20 s (issue 7, item 7).

Everything real: a redis-server, `runner serve` (uvicorn), two `runner worker` processes (Celery),
a SQLite store under a throwaway RUNNER_HOME, a git repository served over file:// (hence
RUNNER_ALLOW_LOCAL_REPOS=1), and a local HTTP server standing in for GitHub's commit status API.

Each build is one signed GitHub push of its own commit on its own branch (so none supersedes another);
its ci.yml has two small jobs, `first` then `second` (needs: first), each sleeping a moment so that
kills land mid-job. Every `--kill-every` seconds one worker (alternately) is SIGKILLed with its pool
children and started again at once; the new one sweeps what the dead one left, and the server resends
jobs whose lease lapsed (RUNNER_JOB_LEASE=4).

What must hold, per the store and the forge:
  - every build finished (status passed, finished_at set) and stays so after a quiet period;
  - every job settled once as passed;
  - every build's final commit status reached the forge, and never two different final states.
A worker SIGKILLed between settling a build and posting its status leaves it to the server: its
recovery loop sends the final status of builds whose `status_reported` lags (after a grace of
max(30 s, lease)), so the script waits that long for any missing one. Sending is at least once:
the same final state twice is harmless to a forge and counted, not failed on.
Counted too: jobs run again after their worker was lost (attempts > 1), duplicate completions (a job
whose step finished in a run whose result was then dropped), from the job logs, and the statuses the
server's sweep sent (from its log).

Usage: python3 benchmarks/soak_builds.py [-b 200] [--kill-every 20] [--quick]   (as root)
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
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

SECRET = "soak-secret"
TOKEN = "soak-token"
FINISHED = {"passed", "failed", "error", "canceled", "skipped"}
# the server's status grace (max(30 s, lease 4 s)) plus two sweeps (every half lease) and slack
STATUS_WAIT = 30 + 4 + 10
CI = """\
jobs:
  first:
    steps:
      - run: echo "start $RUNNER_JOB" && sleep {pause} && echo "done-$RUNNER_JOB"
  second:
    needs: [first]
    steps:
      - run: echo "start $RUNNER_JOB" && sleep {pause} && echo "done-$RUNNER_JOB"
"""
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def final_states(forge: StatusRecorder, sha: str) -> list[str]:
    """The final (not pending) states the forge got for a commit, in order."""
    return [state for state in forge.states.get(sha, []) if state != "pending"]


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "s",
        "GIT_AUTHOR_EMAIL": "s@x",
        "GIT_COMMITTER_NAME": "s",
        "GIT_COMMITTER_EMAIL": "s@x",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()


class StatusRecorder:
    """GitHub's commit status API as a local server: every state posted, per commit."""

    def __init__(self) -> None:
        self.states: dict[str, list[str]] = {}
        lock = threading.Lock()
        states = self.states

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                with lock:
                    states.setdefault(self.path.rsplit("/", 1)[-1], []).append(str(body.get("state")))
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Stack:
    def __init__(self, root: Path, forge_url: str) -> None:
        self.root = root
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        redis_port, self.port = free_port(), free_port()
        (root / "redis").mkdir()
        self._spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(root / "redis"),
                "--appendonly",
                "yes",
            ],
            env=False,
        )
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "RUNNER_HOME": str(root / "home"),
            "RUNNER_DATABASE_URL": f"sqlite:///{root / 'home' / 'runner.db'}",
            "RUNNER_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "RUNNER_WEBHOOK_SECRET": SECRET,
            "RUNNER_API_TOKEN": TOKEN,
            "RUNNER_ALLOW_LOCAL_REPOS": "1",
            "RUNNER_JOB_LEASE": "4",
            "RUNNER_GITHUB_URL": forge_url,
            "RUNNER_GITHUB_TOKEN": "soak",
            "RUNNER_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
        }
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        self._spawn("server", [sys.executable, "-m", "runner.cli", "serve", "--port", str(self.port)])
        self._wait(self._healthy, "the web server")
        self.starts: Counter[str] = Counter()
        for name in ("w1", "w2"):
            self.start_worker(name)

    def _spawn(self, name: str, argv: list[str], env: bool = True) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env if env else None,
            start_new_session=True,  # its own process group: a SIGKILL takes its pool children too
        )
        log.close()

    def start_worker(self, name: str) -> None:
        self.starts[name] += 1
        log = self.root / f"{name}.log"
        ready_before = log.read_bytes().count(b" ready.") if log.exists() else 0
        self._spawn(name, [sys.executable, "-m", "runner.cli", "worker", "--concurrency", "1"])
        self._wait(lambda: log.read_bytes().count(b" ready.") > ready_before, f"worker {name}", 120)

    def kill_worker(self, name: str) -> None:
        process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def _healthy(self) -> bool:
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def _wait(self, condition: Any, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"soak_builds: {what} did not start (logs in {self.root})")
            time.sleep(0.1)

    def stop(self) -> None:
        self.client.close()
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(list(self.processes.values())):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)

    def push(self, repo: Path, sha: str, branch: str) -> int:
        body = json.dumps(
            {
                "ref": f"refs/heads/{branch}",
                "before": "0" * 40,
                "after": sha,
                "created": False,
                "deleted": False,
                "repository": {"full_name": "soak/repo", "clone_url": f"file://{repo}"},
                "head_commit": {"id": sha, "message": f"soak {branch}", "author": {"name": "s"}},
                "pusher": {"name": "s"},
            }
        ).encode()
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": f"sha256={digest}",
            "Content-Type": "application/json",
        }
        for _ in range(5):  # the web server is never killed, but SQLite may be busy for a moment
            response = self.client.post("/hooks/github", content=body, headers=headers)
            if response.status_code == 202:
                return int(response.json()["build_id"])
            time.sleep(1)
        raise SystemExit(f"soak_builds: the webhook answered {response.status_code}: {response.text}")

    def builds(self, ids: list[int]) -> list[dict[str, Any]]:
        return [self.client.get(f"/api/builds/{i}").json() for i in ids]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-b", type=int, default=200, help="builds (default 200)")
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between worker kills (20)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds each job's step sleeps (1)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    parser.add_argument("--quick", action="store_true", help="20 builds, a kill every 8 s")
    args = parser.parse_args()
    if args.quick:
        args.b, args.kill_every = 20, 8.0
    if os.geteuid() != 0 or shutil.which("redis-server") is None:
        print("soak_builds: needs root (containers) and redis-server", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="soak-builds-"))
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "ci.yml").write_text(CI.format(pause=args.pause))
    git(repo, "add", "ci.yml")
    shas = []
    for i in range(args.b):  # a commit per build, so that each build has its own commit status
        git(repo, "commit", "-q", "--allow-empty", "-m", f"build {i}")
        shas.append(git(repo, "rev-parse", "HEAD"))
    forge = StatusRecorder()
    stack = Stack(root, forge.url)
    kills = 0
    ok = False
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(lambda i: stack.push(repo, shas[i], f"soak-{i}"), range(args.b)))
        posted = time.monotonic() - started
        next_kill, victim = time.monotonic() + args.kill_every, 0
        while True:
            builds = stack.builds(ids)
            done = sum(b["status"] in FINISHED and b["finished_at"] is not None for b in builds)
            if done == len(ids):
                break
            if time.monotonic() - started > args.timeout:
                print(
                    f"soak_builds: gave up after {args.timeout:.0f} s with {done}/{len(ids)} builds finished"
                )
                break
            if time.monotonic() >= next_kill:
                name = ("w1", "w2")[victim % 2]
                victim += 1
                stack.kill_worker(name)
                kills += 1
                stack.start_worker(name)
                next_kill = time.monotonic() + args.kill_every
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        time.sleep(10)  # lease 4 s: a late redelivery of any job would show up in this quiet period
        builds = stack.builds(ids)
        again = stack.builds(ids)
        statuses = Counter(b["status"] for b in builds)
        unfinished = [b["id"] for b in builds if b["status"] not in FINISHED or b["finished_at"] is None]
        changed = [a["id"] for a, b in zip(builds, again, strict=True) if a != b]
        jobs = [(b["id"], j) for b in builds for j in b["jobs"]]
        job_statuses = Counter(j["status"] for _, j in jobs)
        reruns = sum(1 for _, j in jobs if j.get("attempts", 1) > 1)
        duplicates = 0
        for build_id, job in jobs:
            log = stack.client.get(f"/api/builds/{build_id}/jobs/{job['name']}/log").text
            duplicates += max(0, log.count(f"done-{job['name']}") - 1)
        waited = 0.0
        while waited < STATUS_WAIT and any(not final_states(forge, sha) for sha in shas):
            time.sleep(1)  # a lost status is sent by the server's sweep once its grace has passed
            waited += 1
        finals = Counter(len(final_states(forge, sha)) for sha in shas)
        twice = [sha[:12] for sha in shas if len(final_states(forge, sha)) > 1]
        conflicting = [sha[:12] for sha in shas if len(set(final_states(forge, sha))) > 1]
        lost = [sha[:12] for sha in shas if not final_states(forge, sha)]
        server_log = (root / "server.log").read_text(errors="replace")
        swept = server_log.count("sent again (its worker was lost)")
        print(
            f"soak_builds: {args.b} builds ({2 * args.b} jobs) over 2 workers, one SIGKILLed every "
            f"{args.kill_every:.0f} s"
        )
        print(f"  posted in {posted:.1f} s; all settled in {elapsed:.1f} s ({args.b / elapsed:.2f} builds/s)")
        print(f"  worker kills (each restarted at once): {kills}")
        print(f"  build statuses: {dict(statuses)}; job statuses: {dict(job_statuses)}")
        print(f"  builds unfinished: {len(unfinished)}; changed after a 10 s quiet period: {len(changed)}")
        print(
            f"  final commit statuses per build: {dict(sorted(finals.items()))} (at least 1; the same state "
            f"twice is harmless: {len(twice)} builds)"
        )
        print(f"  final statuses sent by the server's sweep (their worker was lost): {swept}")
        if lost:
            print(f"  LOST: {len(lost)} builds finished, final status never sent to the forge: {lost}")
        if conflicting:
            print(f"  CONFLICTING: {len(conflicting)} builds sent two different final states: {conflicting}")
        print(f"  jobs run again after their worker was lost: {reruns}; duplicate completions: {duplicates}")
        ok = (
            not unfinished
            and not changed
            and not lost
            and not conflicting
            and statuses == Counter({"passed": args.b})
            and job_statuses == Counter({"passed": 2 * args.b})
        )
    finally:
        stack.stop()
        forge.close()
        sys.path.insert(0, str(ROOT))
        from runner.sandbox.records import sweep
        from runner.settings import Paths

        sweep(Paths(root / "home"))  # what the killed workers' containers left
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"soak_builds: logs kept in {root}")
    print("soak_builds: every build finished exactly once" if ok else "soak_builds: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
