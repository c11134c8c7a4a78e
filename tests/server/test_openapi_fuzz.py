"""Schemathesis against the app's own /openapi.json: every operation, no 5xx, answers as documented.

The app is the real one (SQLite store in a temporary RUNNER_HOME, a real redis-server as broker and
log stream), seeded with a finished build of a real git repository (its jobs, a log, an artifact), so
that generated ids sometimes hit real rows. The API token is sent with every request, so the write
endpoints (trigger, cancel, rerun) run too. Examples per operation are bounded to keep this under a minute.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from server_helpers import TOKEN, encode, github_push, make_repo, settings_for, signed

from runner.server.app import create_app

CI = """\
jobs:
  build:
    steps: [{run: echo build}]
  test:
    needs: [build]
    steps: [{run: echo test}]
"""
# Server-Sent Events never end for a job that is still queued: the live stream is checked in
# tests/logs; here its route is called only for the seeded (finished) build, see `seed`.
STREAM = "/api/builds/{build_id}/jobs/{job}/log/stream"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app under uvicorn on a free port (its lifespan runs once, as in `runner serve`)."""
    import threading
    import time

    import httpx
    import uvicorn
    from helpers.redis_server import free_port, start_redis

    tmp = tmp_path_factory.mktemp("openapi")
    url, stop = start_redis(tmp)
    application = create_app(settings_for(tmp, url))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            seed(client, application, tmp)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        stop()


def seed(client, app, tmp: Path) -> None:
    """A finished build: pushed by a signed webhook, its jobs claimed and settled as a worker would."""
    repo = tmp / "project"
    sha = make_repo(repo, {"ci.yml": CI})
    body = encode(github_push(repo, sha))
    response = client.post("/hooks/github", content=body, headers=signed("github", body))
    assert response.status_code == 202, response.text
    build_id = response.json()["build_id"]
    store = app.state.service.store
    storage = app.state.backends.storage
    artifact = tmp / "report.txt"
    artifact.write_text("ok\n")
    for job in store.jobs(build_id):
        token = uuid.uuid4().hex
        assert store.claim_job(job.id, token, "fuzz", 30) == "claimed"
        storage.append_log(build_id, job.name, f"{job.name}: hello\n")
        storage.mark_log_complete(build_id, job.name)
        storage.put_artifact(build_id, job.name, "out/report.txt", artifact)
        store.artifact_stored(job.id, "out/report.txt", artifact.stat().st_size)
        assert store.finish_job(job.id, token, "passed", "", 1, 0.1)
    assert store.finish_build(build_id, "passed")


# Routes whose answers are not JSON (a badge, Prometheus text, logs, an event stream, files) are checked
# for 5xx only: their schema entries are FastAPI's JSON default, which says nothing about them.
NOT_JSON = ("/badge/", "/metrics", "/log", "/artifacts/")


def check_case(case) -> None:
    if case.path == STREAM and case.path_parameters != {"build_id": 1, "job": "build"}:
        case.path_parameters = {"build_id": 1, "job": "build"}  # the seeded build: its stream ends
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
    response = case.call(timeout=30)
    assert response.status_code not in (401, 403), response.text  # the token opens the write endpoints
    checks: list = [not_a_server_error]
    # The documented shapes are those of successful answers; errors are `{"detail": ...}` throughout.
    if 200 <= response.status_code < 300 and not any(part in case.path for part in NOT_JSON):
        checks += [content_type_conformance, response_schema_conformance]
    case.validate_response(response, checks=checks)


def test_no_operation_answers_5xx_or_off_schema(served: str):
    """Every operation of /openapi.json, 12 generated cases each. Driven through hypothesis directly rather
    than schemathesis's pytest plugin, which reaches into pytest internals that change between releases."""
    from hypothesis import given

    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]  # the API's operations were all found
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case) -> None:
            check_case(case)

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {type(exc).__name__}: {exc}"[:2000])
    assert not failures, "\n\n".join(failures)


def test_a_resume_point_past_64_bits_ends_the_stream_cleanly(served: str):
    """Found by the fuzz above: a Last-Event-ID (or ?after=) past 2**64 broke the response midway,
    as Redis refuses such a stream id; a client that has every line gets the end event."""
    import httpx

    huge = str(2**64)
    with httpx.Client(base_url=served, timeout=30) as client:
        for params, headers in (({"after": huge}, {}), ({}, {"Last-Event-ID": huge})):
            response = client.get("/api/builds/1/jobs/build/log/stream", params=params, headers=headers)
            assert response.status_code == 200
            assert response.text.startswith("event: end"), response.text
