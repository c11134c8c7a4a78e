"""A push becomes a build that runs on real workers in real containers: end to end over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import adapt, github_push, make_repo
from stack import Stack
from status_recorder import StatusRecorder

pytestmark = pytest.mark.kernel

JUNIT = """<?xml version="1.0"?>
<testsuite name="unit" tests="3">
  <testcase classname="t" name="ok"/>
  <testcase classname="t" name="broken"><failure message="boom">trace</failure></testcase>
  <testcase classname="t" name="later"><skipped/></testcase>
</testsuite>
"""

CI = """\
jobs:
  compile:
    steps:
      - name: make
        run: mkdir -p dist reports && echo wheel > dist/app.whl && cp junit.xml reports/ && echo compiled
    artifacts: [dist/*.whl]
    reports: {junit: ["reports/*.xml"]}
  test:
    needs: [compile]
    steps:
      - run: echo "testing on $RUNNER_JOB_NAME" && echo second line
  lint:
    steps:
      - run: echo linting
  never:
    needs: [broken]
    steps: [{run: echo never}]
  broken:
    steps: [{run: exit 3}]
  slowpoke:
    timeout: 1s
    steps: [{run: sleep 30}]
"""


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    stack = Stack(tmp_path, redis_url)
    try:
        stack.start_server()
        yield stack
    finally:
        stack.stop()


def test_a_push_runs_on_two_workers_and_stores_everything(stack, tmp_path):
    repo = tmp_path / "project"
    sha = make_repo(repo, {"ci.yml": CI, "junit.xml": JUNIT})
    stack.start_worker("w1")
    stack.start_worker("w2")
    response = stack.push(github_push(repo, sha))
    assert response.status_code == 202, response.text
    build_id = response.json()["build_id"]
    build = stack.wait_build(build_id, timeout=90)
    jobs = {job["name"]: job for job in build["jobs"]}
    assert build["status"] == "failed", build  # `broken` failed; `never` is skipped because of it
    assert {name: job["status"] for name, job in jobs.items()} == {
        "compile": "passed", "test": "passed", "lint": "passed", "never": "skipped", "broken": "failed",
        "slowpoke": "failed",
    }  # fmt: skip
    assert len({jobs[name]["worker"] for name in ("compile", "test", "lint", "broken")}) == 2
    assert jobs["compile"]["steps"][0]["name"] == "make" and jobs["compile"]["steps"][0]["exit_code"] == 0
    assert jobs["broken"]["steps"][0]["exit_code"] == 3
    assert jobs["slowpoke"]["reason"] == "job timed out after 1s" and jobs["slowpoke"]["duration"] < 10
    assert jobs["compile"]["tests"]["total"] == 3 and jobs["compile"]["tests"]["failed"] == 1
    assert build["started_at"] <= build["finished_at"]

    log = stack.client.get(f"/api/builds/{build_id}/jobs/test/log")
    assert log.status_code == 200 and "second line" in log.text
    artifact = stack.client.get(f"/api/builds/{build_id}/artifacts/compile/dist/app.whl")
    assert artifact.status_code == 200 and artifact.content == b"wheel\n"
    tests = stack.client.get(f"/api/builds/{build_id}/tests").json()
    assert {(c["name"], c["status"], c["change"]) for c in tests["cases"]} == {
        ("t.ok", "passed", None), ("t.broken", "failed", "new_failure"), ("t.later", "skipped", None),
    }  # fmt: skip
    page = stack.client.get(f"/builds/{build_id}")
    assert page.status_code == 200 and "compile" in page.text


def test_a_build_per_forge_from_its_real_payload_reports_commit_status(tmp_path, redis_url):
    repo = tmp_path / "project"
    ci = "jobs:\n  hello:\n    steps:\n      - run: echo hello from ${{ git.sha }} on ${{ git.branch }}\n"
    sha = make_repo(repo, {"ci.yml": ci})
    with StatusRecorder() as forge_api:
        env = {}
        for forge in ("GITHUB", "GITLAB", "GITEA"):
            env[f"RUNNER_{forge}_URL"] = forge_api.url
            env[f"RUNNER_{forge}_TOKEN"] = "t0ken"
        stack = Stack(tmp_path, redis_url, **env)
        try:
            stack.start_server()
            stack.start_worker("w1")
            for forge, fixture in (
                ("github", "push-new-branch.json"),
                ("gitlab", "push.json"),
                ("gitea", "push.json"),
            ):
                response = stack.push(adapt(forge, fixture, repo, sha), forge=forge)
                assert response.status_code == 202, response.text
                build = stack.wait_build(response.json()["build_id"], timeout=60)
                assert build["status"] == "passed" and build["forge"] == forge, build
                log = stack.client.get(f"/api/builds/{build['id']}/jobs/hello/log").text
                assert f"hello from {sha} on main" in log
            expected = {
                f"/repos/local/project/statuses/{sha}": ["pending", "success"],
                f"/api/v4/projects/local%2Fproject/statuses/{sha}": ["pending", "success"],
                f"/api/v1/repos/local/project/statuses/{sha}": ["pending", "success"],
            }
            # a status is sent just after its build is marked finished: wait for the last one
            stack.wait(lambda: forge_api.by_path() == expected, 10, f"statuses {expected}")
        finally:
            stack.stop()


LIVE = """\
jobs:
  unit:
    steps:
      - run: echo first-line && sleep 3 && echo last-line
  e2e:
    labels: [big]
    steps:
      - run: echo on the big queue
"""


def test_the_log_streams_live_and_labels_route_jobs_to_their_queue(stack, tmp_path):
    repo = tmp_path / "project"
    sha = make_repo(repo, {"ci.yml": LIVE})
    stack.start_worker("default")
    build_id = stack.push(github_push(repo, sha)).json()["build_id"]
    seen: list[tuple[float, str]] = []
    url = f"/api/builds/{build_id}/jobs/unit/log/stream"
    with stack.client.stream("GET", url, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            seen.append((time.monotonic(), line))
            if line.startswith("event: end"):
                break
    ended = time.monotonic()
    first = next(t for t, line in seen if '"text":"first-line"' in line)
    last = next(t for t, line in seen if '"text":"last-line"' in line)
    assert last - first >= 2.5  # the first line arrived while the step was still sleeping
    assert ended - first >= 2.5
    assert any(line.startswith("id: ") for _, line in seen)
    # resuming after the first line gives the rest, not the first line again
    lines = [line for _, line in seen]
    first_id = lines[lines.index(next(x for x in lines if '"text":"first-line"' in x)) - 1].removeprefix(
        "id: "
    )
    resumed = stack.client.get(url, headers={"Last-Event-ID": first_id}).text
    assert '"text":"first-line"' not in resumed and '"text":"last-line"' in resumed
    assert '"text":"--- step echo first-line && sleep 3 && echo last-line"' not in resumed  # nor earlier ones

    stack.wait_job(build_id, "unit", "passed")
    time.sleep(2)
    assert {j["name"]: j["status"] for j in stack.build(build_id)["jobs"]}["e2e"] == "queued"
    stack.start_worker("big", queues="big")
    build = stack.wait_build(build_id, timeout=30)
    jobs = {j["name"]: j for j in build["jobs"]}
    assert build["status"] == "passed" and jobs["e2e"]["worker"] != jobs["unit"]["worker"]
