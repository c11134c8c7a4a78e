"""A build's final commit status reaches the forge even when its worker dies right after settling it.

Real store (SQLite, and PostgreSQL when RUNNER_TEST_POSTGRES_URL is set), a real HTTP server standing
in for GitHub's status API; the worker's death is simulated by settling the build with
`store.finish_build` and never reporting it, which is exactly what a SIGKILL between the two leaves.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import empty_database
from sqlalchemy import text
from status_recorder import StatusRecorder

from runner.server.db import MIGRATIONS, make_engine, migrate, session_factory
from runner.server.recovery import report_lost_statuses
from runner.server.status import report_final
from runner.server.store import BuildPlan, BuildStore

POSTGRES = os.environ.get("RUNNER_TEST_POSTGRES_URL", "")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not POSTGRES, reason="RUNNER_TEST_POSTGRES_URL is not set (CI sets it)"),
    ),
]
GRACE = 0.3
URL = "http://runner.example"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    empty_database(POSTGRES)
    yield POSTGRES


@pytest.fixture
def store(database_url: str) -> BuildStore:
    engine = make_engine(database_url)
    migrate(engine)
    return BuildStore(session_factory(engine))


@pytest.fixture
def forge(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatusRecorder]:
    with StatusRecorder() as recorder:
        monkeypatch.setenv("RUNNER_GITHUB_URL", recorder.url)
        monkeypatch.setenv("RUNNER_GITHUB_TOKEN", "t0ken")
        yield recorder


def plan(sha: str, forge: str = "github") -> BuildPlan:
    return BuildPlan(
        forge=forge, repo="o/r", repo_url="file:///r", ref="refs/heads/main", sha=sha, branch="main"
    )


def path(sha: str) -> str:
    return f"/repos/o/r/statuses/{sha}"


def test_a_build_settled_by_a_worker_killed_before_reporting_gets_its_status_once(store, forge):
    build_id, _ = store.create_build(plan("a" * 40))
    assert store.finish_build(build_id, "failed")  # ...and the worker is SIGKILLed here
    assert report_lost_statuses(store, URL, GRACE) == []  # its worker may still report: left alone
    time.sleep(GRACE + 0.1)
    assert report_lost_statuses(store, URL, GRACE) == [build_id]
    assert report_lost_statuses(store, URL, GRACE) == []
    assert forge.by_path() == {path("a" * 40): ["failure"]}
    assert forge.calls[0][1]["target_url"] == f"{URL}/builds/{build_id}"
    assert store.build(build_id).status_reported == "failed"


def test_a_status_the_settling_worker_reported_is_not_sent_again(store, forge):
    build_id, _ = store.create_build(plan("b" * 40))
    store.finish_build(build_id, "passed")
    assert report_final(store, store.build(build_id), URL)
    time.sleep(GRACE + 0.1)
    assert report_lost_statuses(store, URL, GRACE) == []
    assert forge.by_path() == {path("b" * 40): ["success"]}


def test_a_forge_that_is_down_gets_the_status_on_a_later_sweep(store, forge, caplog):
    first, _ = store.create_build(plan("c" * 40))
    second, _ = store.create_build(plan("d" * 40))
    store.finish_build(first, "passed")
    store.finish_build(second, "canceled")
    time.sleep(GRACE + 0.1)
    forge.refuse(4, 503)  # every attempt of the reporter's first send (it retries 5xx with backoff)
    with caplog.at_level("WARNING", logger="runner.server.recovery"):
        assert report_lost_statuses(store, URL, GRACE) == []
    assert forge.refused == 4  # the second build was not tried against a forge known down this sweep
    assert f"build {first}: final status passed still not sent to github" in caplog.text
    assert store.build(first).status_reported == ""
    assert report_lost_statuses(store, URL, GRACE) == [first, second]
    assert report_lost_statuses(store, URL, GRACE) == []
    assert forge.by_path() == {path("c" * 40): ["success"], path("d" * 40): ["error"]}


def test_builds_without_a_forge_to_tell_are_marked_without_a_send(store, forge, monkeypatch):
    api_build, _ = store.create_build(plan("e" * 40, forge="api"))
    gitlab_build, _ = store.create_build(plan("f" * 40, forge="gitlab"))  # no RUNNER_GITLAB_TOKEN
    monkeypatch.delenv("RUNNER_GITLAB_TOKEN", raising=False)
    store.finish_build(api_build, "passed")
    store.finish_build(gitlab_build, "failed")
    time.sleep(GRACE + 0.1)
    assert sorted(report_lost_statuses(store, URL, GRACE)) == sorted([api_build, gitlab_build])
    assert report_lost_statuses(store, URL, GRACE) == []
    assert forge.calls == []


def test_a_sweep_takes_the_oldest_few_and_the_next_sweep_the_rest(store, forge):
    ids = []
    for n in range(5):
        build_id, _ = store.create_build(plan(f"{n:040x}"))
        store.finish_build(build_id, "passed")
        ids.append(build_id)
    time.sleep(GRACE + 0.1)
    assert report_lost_statuses(store, URL, GRACE, limit=3) == ids[:3]
    assert report_lost_statuses(store, URL, GRACE, limit=3) == ids[3:]
    assert sorted(forge.by_path()) == sorted(path(f"{n:040x}") for n in range(5))


def test_upgrading_a_0002_store_takes_its_finished_builds_as_reported(database_url, forge):
    from alembic import command
    from alembic.config import Config

    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    columns = "forge, repo, repo_url, ref, branch, tag, sha, event, message, author, status, reason, "
    columns += "cancel_requested, created_at, started_at, finished_at"
    insert = text(
        f"INSERT INTO builds ({columns}) VALUES (:forge, 'o/r', 'file:///r', 'refs/heads/main', 'main', '', "
        ":sha, 'push', '', '', :status, '', :canceled, 1.0, 1.0, :finished)"
    )
    rows = [("passed", 2.0), ("failed", 3.0), ("canceled", 4.0), ("running", None)]
    with engine.begin() as conn:
        for n, (status, finished) in enumerate(rows):
            conn.execute(insert, {"forge": "github", "sha": f"{n:040x}", "status": status,
                                  "canceled": status == "canceled", "finished": finished})  # fmt: skip
    migrate(engine)
    store = BuildStore(session_factory(engine))
    with engine.connect() as conn:
        found = conn.execute(text("SELECT status, status_reported FROM builds ORDER BY id")).all()
    assert [tuple(r) for r in found] == [("passed", "passed"), ("failed", "failed"),
                                         ("canceled", "canceled"), ("running", "")]  # fmt: skip
    assert report_lost_statuses(store, URL, 0) == []  # history is not sent again
    running = store.unfinished_builds("o/r", "main", 10_000)
    assert len(running) == 1 and store.finish_build(running[0], "passed")
    time.sleep(0.05)
    assert report_lost_statuses(store, URL, 0) == running
    assert forge.by_path() == {path(f"{3:040x}"): ["success"]}


def test_the_sweep_reads_the_partial_index_not_the_builds(database_url):
    """The store's own query, as it reaches the database, is planned on the index of unreported builds."""
    from sqlalchemy import event

    engine = make_engine(database_url)
    migrate(engine)
    store = BuildStore(session_factory(engine))
    seen: list[tuple[str, object]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    assert store.unreported_builds(0) == []
    statement, parameters = next((s, p) for s, p in seen if "FROM builds" in s)
    event.remove(engine, "before_cursor_execute", _capture)
    sqlite = engine.url.get_backend_name() == "sqlite"
    with engine.connect() as conn:
        if not sqlite:  # an empty table would be scanned whatever the indexes: ask for the index's plan
            conn.exec_driver_sql("SET enable_seqscan = off")
        explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        plan_rows = conn.exec_driver_sql(explain + statement, parameters).all()  # type: ignore[arg-type]
    assert any("ix_builds_unreported" in str(row) for row in plan_rows), plan_rows
