#!/usr/bin/env python3
"""Server-side render times of the results pages on a large build, against the 200 ms target (issue 6).

A throwaway RUNNER_HOME gets a SQLite store with 21 builds of one branch: each has a `unit` job with
5,000 test cases (the latest with a few hundred failing: new, still failing, fixed and flaky among
them, with traces and output) and two small jobs with steps, and the latest `unit` job has a 50 MB
log in storage (indexed as a finished job's is). The app then answers each page in-process through
the ASGI app (Starlette's TestClient: routing, the store, Jinja, no network), and every page is timed
over N runs after 3 warm-up runs. A real redis-server is started when one is installed (the
dashboard reads queue depths from it); without one those figures include a refused connection.

No peer can run here (hosted CI pages are measured in a browser over the internet), so the figures
are printed beside the target as a ratio: below 1.00 meets it.

Usage: python3 benchmarks/page_render.py [--runs 30] [--cases 5000] [--failing 300] [--builds 20]
                                         [--log-mb 50] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_MS = 200.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def start_redis(home: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    binary = shutil.which("redis-server")
    port = free_port()
    if binary is None:
        return None, f"redis://127.0.0.1:{port}/0"  # nothing listens: queue depth reads fail fast
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(home),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


class Case:
    """What `BuildStore.tests_collected` reads of a `runner.reports.TestCase`."""

    __slots__ = ("classname", "file", "full_name", "line", "message", "reruns", "status", "stderr", "stdout",
                 "suite", "time", "trace")  # fmt: skip

    def __init__(self, i: int, status: str, rng: random.Random) -> None:
        module = f"tests.pkg{i % 40}.test_mod{i % 250}"
        self.suite = module
        self.classname = module
        self.full_name = f"{module}::test_case_{i}"
        self.status = status
        self.time = round(rng.expovariate(1 / 0.05), 4)
        self.file = f"tests/pkg{i % 40}/test_mod{i % 250}.py"
        self.line = 10 + i % 300
        self.reruns: list[Any] = []
        self.stdout = self.stderr = self.message = self.trace = ""
        if status in ("failed", "error", "flaky"):
            self.message = f"AssertionError: expected {i} == {i + 1} <got &amp; 'quoted'>"
            frames = "\n".join(
                f'  File "{self.file}", line {self.line + k}, in helper_{k}\n    do_{k}()' for k in range(20)
            )
            self.trace = f"Traceback (most recent call last):\n{frames}\n{self.message}"
            self.stdout = "\n".join(f"log line {k} of case {i}" for k in range(80))
            self.stderr = "warning: something odd\n" * 5


def make_cases(count: int, failing: int, build: int, latest: bool, rng: random.Random) -> list[Case]:
    """About `failing` cases fail in the latest build (a few errors and flaky ones among them); each
    earlier build fails most of the same ones plus a few of its own, so the latest has new failures,
    old ones and fixes."""
    every = max(1, count // failing)
    cases = []
    for i in range(count):
        status = "passed"
        if i % every == 0:
            status = "error" if i % (every * 7) == 0 else "failed"
        if latest:
            if i % (every * 5) == every * 2:
                status = "flaky"
            if i % (every * 4) == every:  # new failures
                status = "failed"
            if i % (every * 6) == 0 and i:  # fixed
                status = "passed"
        elif i % (every * 4) == (build % 4) * 3 + 2:
            status = "failed"
        if i % 41 == 3:
            status = "skipped"
        cases.append(Case(i, status, rng))
    return cases


def populate(settings: Any, args: argparse.Namespace) -> tuple[int, str]:
    """The builds, their jobs and steps, the test cases and the big log; returns (latest build id, job)."""
    from runner.logs.lines import load_index
    from runner.logs.storage import DirectoryStorage
    from runner.server.db import make_engine, migrate, session_factory
    from runner.server.store import BuildPlan, BuildStore, JobPlan

    engine = make_engine(settings.database_url)
    migrate(engine)
    store = BuildStore(session_factory(engine))
    rng = random.Random(6)
    latest = 0
    for n in range(args.builds + 1):
        is_latest = n == args.builds
        plan = BuildPlan(
            forge="github", repo="acme/shop", repo_url="https://example.invalid/acme/shop.git",
            ref="refs/heads/main", sha=f"{n:040x}", branch="main", message=f"change {n}\n\nwith a body",
            author="Ada", jobs=[JobPlan("lint"), JobPlan("unit", needs=["lint"]), JobPlan("e2e")],
        )  # fmt: skip
        build_id, _ = store.create_build(plan)
        store.start_build(build_id)
        for job in store.jobs(build_id):
            assert store.claim_job(job.id, "tok", "bench-worker", 3600) == "claimed"
            for index, name in enumerate(("checkout", "install", "run", "report")):
                store.step_started(job.id, index, name, time.time())
                values = {"status": "passed", "exit_code": 0, "reason": "exited", "duration": 1.5 + index}
                store.step_finished(job.id, index, name, values)
            if job.name == "unit":
                from runner.reports.model import counts

                cases = make_cases(args.cases, args.failing, n, is_latest, rng)
                store.tests_collected(build_id, job.id, counts(cases), cases)  # type: ignore[arg-type]
            status = "failed" if job.name == "unit" else "passed"
            store.finish_job(job.id, "tok", status, "", 1, 42.0, {"image": 0.5, "clone": 0.2})
        store.finish_build(build_id, "failed")
        latest = build_id

    storage = DirectoryStorage(settings.storage_root)
    line = "2026-01-01T00:00:00Z [unit] " + "x" * 70 + " step output line number "
    chunk_lines = 10_000
    written, number = 0, 0
    goal = args.log_mb * 1024 * 1024
    while written < goal:
        text = "".join(f"{line}{number + k}\n" for k in range(chunk_lines))
        storage.append_log(latest, "unit", text)
        written += len(text)
        number += chunk_lines
    storage.mark_log_complete(latest, "unit")
    load_index(storage, latest, "unit")  # as the recorder does when the job ends
    size = f"{written / 2**20:.1f} MiB"
    print(f"store: {args.builds + 1} builds x {args.cases} cases; log: {size}, {number} lines")
    engine.dispose()
    return latest, "unit"


def max_build(settings: Any) -> int:
    from sqlalchemy import text

    from runner.server.db import make_engine

    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        found = int(conn.execute(text("SELECT max(id) FROM builds")).scalar() or 0)
    engine.dispose()
    return found


def time_get(client: Any, url: str, runs: int) -> tuple[float, list[float], list[float], int]:
    """The first request's wall-clock milliseconds (nothing kept yet), then wall-clock and CPU
    milliseconds of `runs` requests after 3 warm-ups, and the answer's size.

    The CPU time is the whole process's (the app answers in the same process), so it shows the work
    a request costs even when other programs share the machine and stretch the wall clock."""
    first = 0.0
    for n in range(3):
        started = time.perf_counter()
        answer = client.get(url)
        if n == 0:
            first = (time.perf_counter() - started) * 1000
        if answer.status_code != 200:
            raise SystemExit(f"{url}: HTTP {answer.status_code}: {answer.text[:300]}")
    wall, cpu = [], []
    size = 0
    for _ in range(runs):
        started, used = time.perf_counter(), time.process_time()
        answer = client.get(url)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1000)
        size = len(answer.content)
    return first, wall, cpu, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--failing", type=int, default=300)
    parser.add_argument("--builds", type=int, default=20, help="earlier builds of the branch")
    parser.add_argument("--log-mb", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the RUNNER_HOME and print its path")
    parser.add_argument("--reuse", type=Path, help="time the pages of a RUNNER_HOME kept by --keep")
    args = parser.parse_args()

    home = args.reuse or Path(tempfile.mkdtemp(prefix="runner-pages-"))
    args.keep = args.keep or args.reuse is not None
    redis, broker = start_redis(home)
    try:
        from fastapi.testclient import TestClient

        from runner.server.app import create_app
        from runner.server.settings import ServerSettings

        settings = ServerSettings(
            home=home, database_url=f"sqlite:///{home / 'runner.db'}", broker_url=broker
        )
        started = time.perf_counter()
        if args.reuse:
            build_id, job = max_build(settings), "unit"
        else:
            build_id, job = populate(settings, args)
        print(f"setup: {time.perf_counter() - started:.1f}s (RUNNER_HOME {home})")
        pages = [
            ("build page", f"/builds/{build_id}"),
            ("tests page", f"/builds/{build_id}/tests"),
            ("tests page 10", f"/builds/{build_id}/tests?page=10"),
            ("tests filtered", f"/builds/{build_id}/tests?q=test_case_42"),
            ("dashboard", "/"),
            ("log tail API", f"/api/builds/{build_id}/jobs/{job}/log/lines?tail=1000"),
            ("tests JSON (all)", f"/api/builds/{build_id}/tests"),
        ]
        head = ("page", "first ms", "p50 ms", "p95 ms", "cpu p50", "target", "p95/target", "bytes")
        print("\n{:<18} {:>8} {:>8} {:>8} {:>8} {:>7} {:>10} {:>9}".format(*head))
        over = []
        with TestClient(create_app(settings)) as client:
            for name, url in pages:
                first, wall, cpu, size = time_get(client, url, args.runs)
                p50, p95 = statistics.median(wall), pct(wall, 0.95)
                ratio = p95 / TARGET_MS
                flag = "" if ratio <= 1 else "  over"
                print(
                    f"{name:<18} {first:8.1f} {p50:8.1f} {p95:8.1f} {statistics.median(cpu):8.1f} "
                    f"{TARGET_MS:7.0f} {ratio:10.2f} {size:9d}{flag}"
                )
                if ratio > 1:
                    over.append(name)
        print(
            f"\n{args.runs} runs each after 3 warm-ups, in-process ASGI (no network); 'first' is the first\n"
            "request (a finished build's page-wide counts are then kept); cpu is this process's CPU time\n"
            "per request,"
            f" which other programs on the machine do not stretch (load now: {os.getloadavg()[0]:.1f}).\n"
            "No peer runs here: the target is the comparison."
        )
        if over:
            print("over the target: " + ", ".join(over))
        return 0
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
