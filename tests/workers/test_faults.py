"""Faults on the way of a build: cancel, superseded builds, a worker killed mid-job, Redis and the web
server restarted mid-build, one delivery posted twice at once. Real processes throughout."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers.redis_server import start_redis
from server_helpers import commit, github_push, make_repo
from stack import Stack
from status_recorder import StatusRecorder

from runner.sandbox.records import sweep
from runner.settings import Paths

pytestmark = pytest.mark.kernel

SLOW = """\
jobs:
  slow:
    steps:
      - run: echo started && sleep {seconds} && echo slept
  after:
    needs: [slow]
    steps:
      - run: echo after
"""


def _stack(tmp_path: Path, redis_url: str, recorder: StatusRecorder | None = None, **env: str) -> Stack:
    if recorder is not None:
        env |= {"RUNNER_GITHUB_URL": recorder.url, "RUNNER_GITHUB_TOKEN": "t0ken"}
    stack = Stack(tmp_path, redis_url, **env)
    stack.start_server()
    return stack


def _cleanup(stack: Stack) -> None:
    stack.stop()
    sweep(Paths(stack.home))  # containers of killed workers


def test_cancel_kills_the_running_job_within_2s_and_reports_it(tmp_path, redis_url):
    repo = tmp_path / "project"
    sha = make_repo(repo, {"ci.yml": SLOW.format(seconds=60)})
    with StatusRecorder() as forge:
        stack = _stack(tmp_path, redis_url, forge)
        try:
            stack.start_worker()
            build_id = stack.push(github_push(repo, sha)).json()["build_id"]
            stack.wait_job(build_id, "slow", "running")
            stack.wait(lambda: "started" in stack.client.get(f"/api/builds/{build_id}/jobs/slow/log").text,
                       30, "the step to start")  # fmt: skip
            asked = time.monotonic()
            assert stack.post(f"/api/builds/{build_id}/cancel").status_code == 200
            stack.wait_job(build_id, "slow", "canceled", timeout=5)
            assert time.monotonic() - asked <= 2.5
            build = stack.wait_build(build_id, timeout=10)
            assert build["status"] == "canceled"
            assert {j["name"]: j["status"] for j in build["jobs"]} == {
                "slow": "canceled",
                "after": "canceled",
            }
            assert stack.post(f"/api/builds/{build_id}/cancel").status_code == 409
            path = f"/repos/local/project/statuses/{sha}"
            stack.wait(lambda: forge.by_path().get(path) == ["pending", "error"], 10, "the canceled status")
        finally:
            _cleanup(stack)


def test_a_newer_push_cancels_the_superseded_build_of_its_branch(tmp_path, redis_url):
    repo = tmp_path / "project"
    first = make_repo(repo, {"ci.yml": SLOW.format(seconds=60)})
    stack = _stack(tmp_path, redis_url)
    try:
        stack.start_worker()
        old = stack.push(github_push(repo, first)).json()["build_id"]
        stack.wait_job(old, "slow", "running")
        second = commit(repo, {"ci.yml": SLOW.format(seconds=0)}, "faster")
        new = stack.push(github_push(repo, second)).json()["build_id"]
        assert stack.wait_build(old, timeout=10)["status"] == "canceled"
        assert "superseded by build" in stack.build(old)["reason"]
        assert stack.wait_build(new, timeout=30)["status"] == "passed"
    finally:
        _cleanup(stack)


def test_a_worker_killed_mid_job_the_job_runs_again_and_the_build_finishes_once(tmp_path, redis_url):
    repo = tmp_path / "project"
    sha = make_repo(repo, {"ci.yml": SLOW.format(seconds=4)})
    with StatusRecorder() as forge:
        # the broker's visibility timeout stays at hours: the server sees the lapsed lease and resends
        stack = _stack(tmp_path, redis_url, forge, RUNNER_JOB_LEASE="2")
        try:
            doomed = stack.start_worker("doomed")
            build_id = stack.push(github_push(repo, sha)).json()["build_id"]
            stack.wait_job(build_id, "slow", "running")
            log_url = f"/api/builds/{build_id}/jobs/slow/log"
            stack.wait(lambda: "started" in stack.client.get(log_url).text, 30, "the step to start")
            stack.kill(doomed)
            stack.start_worker("survivor")  # sweeps what the killed worker left, at start or first container
            build = stack.wait_build(build_id, timeout=60)
            jobs = {j["name"]: j for j in build["jobs"]}
            assert build["status"] == "passed", build
            assert jobs["slow"]["attempts"] == 2 and jobs["after"]["attempts"] == 1
            log = stack.client.get(f"/api/builds/{build_id}/jobs/slow/log").text
            assert "run 2: the worker that ran this job before was lost" in log and "slept" in log
            time.sleep(3)  # a late duplicate of either message must not run a finished job again
            assert stack.build(build_id)["jobs"] == build["jobs"]
            assert forge.by_path()[f"/repos/local/project/statuses/{sha}"] == ["pending", "success"]
        finally:
            _cleanup(stack)


def test_redis_restarted_mid_build_loses_no_build(tmp_path):
    url, stop = start_redis(tmp_path, appendonly=True)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    repo = tmp_path / "project"
    sha = make_repo(repo, {"ci.yml": SLOW.format(seconds=3)})
    stack = _stack(tmp_path, url)
    try:
        stack.start_worker()
        build_id = stack.push(github_push(repo, sha)).json()["build_id"]
        stack.wait_job(build_id, "slow", "running")
        stop()
        time.sleep(1)
        url, stop = start_redis(tmp_path, port=port, appendonly=True)
        build = stack.wait_build(build_id, timeout=60)
        assert build["status"] == "passed", build
        assert "after" in stack.client.get(f"/api/builds/{build_id}/jobs/after/log").text
    finally:
        _cleanup(stack)
        stop()


def test_the_web_server_restarted_with_a_build_in_flight(tmp_path, redis_url):
    repo = tmp_path / "project"
    sha = make_repo(repo, {"ci.yml": SLOW.format(seconds=2)})
    stack = _stack(tmp_path, redis_url)
    try:
        stack.start_worker()
        build_id = stack.push(github_push(repo, sha)).json()["build_id"]
        stack.wait_job(build_id, "slow", "running")
        stack.stop_server()
        stack.start_server()
        assert stack.wait_build(build_id, timeout=30)["status"] == "passed"
    finally:
        _cleanup(stack)


def test_one_delivery_posted_twice_at_once_makes_one_build(tmp_path, redis_url):
    repo = tmp_path / "project"
    sha = make_repo(repo, {"ci.yml": SLOW.format(seconds=0)})
    stack = _stack(tmp_path, redis_url)
    try:
        payload = github_push(repo, sha)
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: stack.push(payload, delivery="same-delivery"), range(4)))
        codes = sorted(a.status_code for a in answers)
        assert codes == [200, 200, 200, 202], [a.text for a in answers]
        ids = {a.json()["build_id"] for a in answers}
        assert len(ids) == 1
        assert [a.json()["ignored"] for a in answers if a.status_code == 200] == ["repeated delivery"] * 3
        assert len(stack.client.get("/api/builds").json()) == 1
    finally:
        _cleanup(stack)
