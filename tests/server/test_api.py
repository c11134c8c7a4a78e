"""The JSON API, pages, badge, metrics, health and OpenAPI of contract.md §3 (real Redis, real git)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from fastapi.testclient import TestClient
from server_helpers import TOKEN, make_repo, settings_for

from runner.server.app import create_app
from runner.server.settings import ServerSettings
from runner.server.store import BuildPlan, JobPlan

CI = """\
jobs:
  unit:
    steps:
      - run: echo unit
  e2e:
    needs: [unit]
    labels: [big]
    steps:
      - run: echo e2e
"""
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> ServerSettings:
    return settings_for(tmp_path, redis_url)


@pytest.fixture
def client(settings: ServerSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "app"
    return path, make_repo(path, {"ci.yml": CI})


def store(client: TestClient):  # the app's own store, to stage finished builds
    return client.app.state.service.store  # type: ignore[attr-defined]


def finished_build(
    client: TestClient, branch: str, cases: list[tuple[str, str]], status: str = "failed"
) -> int:
    """A build of `branch` whose job `unit` ran and collected `cases` (name, status)."""
    s = store(client)
    plan = BuildPlan(
        forge="github", repo="o/app", repo_url="file:///x", ref=f"refs/heads/{branch}", sha="a" * 40,
        branch=branch, jobs=[JobPlan("unit")],
    )  # fmt: skip
    build_id, _ = s.create_build(plan)
    [job] = s.jobs(build_id)
    assert s.claim_job(job.id, "tok", "test", 30) == "claimed"
    objects = [
        SimpleNamespace(suite="s", full_name=name, status=st, time=0.1, message="") for name, st in cases
    ]
    s.tests_collected(build_id, job.id, {"total": len(cases)}, objects)
    s.finish_job(job.id, "tok", status, "", 1, 1.0)
    s.finish_build(build_id, status)
    return build_id


def test_write_endpoints_need_the_token(client, tmp_path, redis_url, repo):
    body = {"repo_url": f"file://{repo[0]}", "ref": "main"}
    assert client.post("/api/builds", json=body).status_code == 401
    assert client.post("/api/builds", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/api/builds/1/cancel").status_code == 401
    assert client.post("/api/builds/1/rerun").status_code == 401
    unset = settings_for(tmp_path / "b", redis_url, api_token=None)
    with TestClient(create_app(unset)) as other:
        answer = other.post("/api/builds", json=body, headers=AUTH)
        assert answer.status_code == 403 and "RUNNER_API_TOKEN" in answer.json()["detail"]


def test_a_manual_build_resolves_the_ref_and_routes_jobs_by_label(client, settings, repo):
    path, sha = repo
    answer = client.post("/api/builds", json={"repo_url": f"file://{path}", "ref": "main"}, headers=AUTH)
    assert answer.status_code == 202, answer.text
    build = client.get(f"/api/builds/{answer.json()['build_id']}").json()
    assert (build["sha"], build["branch"], build["repo"], build["status"]) == (sha, "main", "app", "queued")
    assert [j["labels"] for j in build["jobs"]] == [[], ["big"]]
    broker = redis.Redis.from_url(settings.broker_url)
    assert broker.llen("runner") == 1 and broker.llen("big") == 0  # e2e waits for unit
    assert 'runner_queue_depth{queue="runner"} 1.0' in client.get("/metrics").text
    bad = client.post("/api/builds", json={"repo_url": f"file://{path}", "ref": "nope"}, headers=AUTH)
    assert bad.status_code == 422 and "nope" in bad.json()["detail"]
    assert client.post("/api/builds", json={"ref": "main"}, headers=AUTH).status_code == 422


def test_cancel_settles_queued_jobs_and_rerun_makes_a_new_build(client, repo):
    path, _ = repo
    build_id = client.post(
        "/api/builds", json={"repo_url": f"file://{path}", "ref": "main"}, headers=AUTH
    ).json()["build_id"]
    answer = client.post(f"/api/builds/{build_id}/cancel", headers=AUTH)
    assert answer.status_code == 200
    build = client.get(f"/api/builds/{build_id}").json()
    assert build["status"] == "canceled" and {j["status"] for j in build["jobs"]} == {"canceled"}
    assert client.post(f"/api/builds/{build_id}/cancel", headers=AUTH).status_code == 409
    rerun = client.post(f"/api/builds/{build_id}/rerun", headers=AUTH)
    assert rerun.status_code == 202 and rerun.json()["build_id"] == build_id + 1
    assert client.get(f"/api/builds/{build_id + 1}").json()["sha"] == build["sha"]
    assert client.post("/api/builds/999/cancel", headers=AUTH).status_code == 404


def test_builds_are_listed_newest_first_with_filters(client):
    first = finished_build(client, "main", [], "passed")
    second = finished_build(client, "dev", [], "failed")
    assert [b["id"] for b in client.get("/api/builds").json()] == [second, first]
    assert [b["id"] for b in client.get("/api/builds?branch=main").json()] == [first]
    assert [b["id"] for b in client.get("/api/builds?status=failed").json()] == [second]
    assert [b["id"] for b in client.get("/api/builds?repo=o/app&limit=1").json()] == [second]
    assert client.get("/api/builds?repo=other").json() == []
    build = client.get(f"/api/builds/{first}").json()
    for key in ("id", "repo", "ref", "sha", "status", "created_at", "started_at", "finished_at", "jobs"):
        assert key in build
    assert set(build["jobs"][0]) >= {"name", "status", "steps", "tests"}
    assert client.get("/api/builds/12345").status_code == 404
    assert client.get("/api/builds/12345/tests").status_code == 404
    assert client.get(f"/api/builds/{first}/jobs/nope/log").status_code == 404
    assert client.get(f"/api/builds/{first}/artifacts/unit/x.txt").status_code == 404


def test_tests_are_compared_with_the_previous_build_of_the_branch(client):
    finished_build(client, "main", [("a", "passed"), ("b", "failed"), ("c", "failed")])
    finished_build(client, "other", [("a", "failed")])  # another branch is not compared
    latest = finished_build(
        client, "main", [("a", "failed"), ("b", "passed"), ("c", "error"), ("d", "skipped")]
    )
    tests = client.get(f"/api/builds/{latest}/tests").json()
    changes = {case["name"]: case["change"] for case in tests["cases"]}
    assert changes == {"a": "new_failure", "b": "fixed", "c": "still_failing", "d": None}
    assert tests["changes"] == {"new_failure": 1, "fixed": 1, "still_failing": 1}
    assert {c["suite"] for c in tests["cases"]} == {"s"} and tests["summary"]["total"] == 4
    page = client.get(f"/builds/{latest}/tests")
    assert page.status_code == 200 and "new failure" in page.text and "still failing" in page.text


def test_pages_badge_metrics_health_and_openapi(client):
    build_id = finished_build(client, "main", [("a", "passed")], "passed")
    index = client.get("/")
    assert index.status_code == 200 and f'href="/builds/{build_id}"' in index.text
    page = client.get(f"/builds/{build_id}")
    assert page.status_code == 200 and "unit" in page.text and "passed" in page.text
    assert client.get("/builds/999").status_code == 404
    badge = client.get("/badge/o/app.svg?branch=main")
    assert badge.headers["content-type"].startswith("image/svg+xml") and "build: passing" in badge.text
    assert "unknown" in client.get("/badge/o/app.svg?branch=nowhere").text
    metrics = client.get("/metrics").text
    assert 'runner_builds{status="passed"} 1.0' in metrics
    assert 'runner_queue_depth{queue="runner"} 0.0' in metrics
    assert 'runner_job_duration_seconds_count{status="passed"} 1.0' in metrics
    again = client.get("/metrics").text  # a job is observed once, not at every scrape
    assert 'runner_job_duration_seconds_count{status="passed"} 1.0' in again
    assert client.get("/healthz").json() == {"status": "ok", "webhooks": True, "api": True}
    schema = client.get("/openapi.json").json()
    assert {"/hooks/{forge}", "/api/builds", "/api/builds/{build_id}/cancel"} <= set(schema["paths"])


def test_ids_past_32_bits_are_a_422_everywhere(client):
    """Ids are INTEGER columns (32-bit on PostgreSQL): a larger one must be refused before any query."""
    big = 2**31
    for path in (
        f"/api/builds/{big}",
        f"/api/builds/{big}/tests",
        f"/api/builds/{big}/jobs/x/log",
        f"/api/builds/{big}/artifacts/x/y",
        f"/builds/{big}",
        f"/builds/{big}/tests",
    ):
        assert client.get(path).status_code == 422, path
    assert client.get(f"/api/builds/{big - 1}").status_code == 404
