"""A case's history over the branch's recent builds, and the migration that gave test cases their key,
trace and output (upgrading a store that already holds builds), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from server_helpers import empty_database, settings_for
from sqlalchemy import inspect, text
from testcase_helpers import cases_by_name, dom, finished_build, junit

from runner.server.app import create_app
from runner.server.db import MIGRATIONS, make_engine, migrate, session_factory
from runner.server.store import BuildStore
from runner.server.testdiff import HISTORY, case_key
from runner.server.testqueries import TestQueries

POSTGRES = os.environ.get("RUNNER_TEST_POSTGRES_URL", "")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not POSTGRES, reason="RUNNER_TEST_POSTGRES_URL is not set (CI sets it)"),
    ),
]


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> Iterator[TestClient]:
    app = create_app(settings_for(tmp_path, redis_url))
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()  # PostgreSQL counts connections: give this app's back now


def test_the_history_strip_shows_the_branch_s_last_builds_oldest_first(client):
    store: BuildStore = client.app.state.service.store  # type: ignore[attr-defined]
    main: list[int] = []
    statuses: dict[int, str] = {}
    for n in range(HISTORY + 3):
        status = "failed" if n % 3 == 0 else "passed"
        cases = [("a", status)] + ([("new", "passed")] if n >= HISTORY else [])
        build_id = finished_build(store, [junit(cases)])
        main.append(build_id)
        statuses[build_id] = status
        finished_build(store, [junit([("a", "error")])], branch="feature")  # never in main's strip
    latest = main[-1]
    cases = cases_by_name(dom(client.get(f"/builds/{latest}/tests").text))

    strip = cases["T.a"].find(data_testid="test-history")
    marks = strip.children
    shown = main[-HISTORY:]
    assert [m.attrs["href"].split("/")[2] for m in marks] == [str(i) for i in shown]
    assert [m.attrs["data-status"] for m in marks] == [statuses[i] for i in shown]
    key = case_key("unit", "s", "T.a")
    assert all(
        m.tag == "a" and m.attrs["href"] == f"/builds/{i}/tests?case={key}"
        for m, i in zip(marks, shown, strict=True)
    )
    linked = dom(client.get(marks[0].attrs["href"]).text).find_all(data_testid="test-case")  # that case only
    assert [c.find(data_testid="test-name").text for c in linked] == ["T.a"]
    assert [c.attrs["data-status"] for c in linked] == [statuses[shown[0]]]
    assert marks[0].attrs["title"] == f"build {shown[0]}: {statuses[shown[0]]}"  # its accessible name
    assert [m.attrs.get("aria-current") for m in marks] == [None] * (HISTORY - 1) + ["page"]
    assert strip in cases["T.a"].children[0].children  # in the <summary>: seen without opening the case

    new = [m.attrs["data-status"] for m in cases["T.new"].find(data_testid="test-history").children]
    assert new == ["none"] * (HISTORY - 3) + ["passed"] * 3  # it did not exist in the older builds
    assert (
        cases["T.new"].find(data_testid="test-history").children[0].attrs["title"]
        == f"build {shown[0]}: did not run"
    )

    older = main[1]  # an old build's strip stops at that build
    early = cases_by_name(dom(client.get(f"/builds/{older}/tests").text))["T.a"]
    assert [m.attrs["href"].split("/")[2] for m in early.find(data_testid="test-history").children] == [
        str(main[0]),
        str(older),
    ]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    empty_database(POSTGRES)
    yield POSTGRES


def test_the_migration_upgrades_a_store_that_already_has_test_cases(database_url):
    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:  # the store as the first release left it
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO builds (id, forge, repo, repo_url, ref, branch, tag, sha, event, message,"
                " author, status, reason, cancel_requested, created_at, finished_at)"
                " VALUES (1, 'github', 'o/app', 'x', 'refs/heads/main', 'main', '', :sha, 'push', '', '',"
                " 'failed', '', false, 1.0, 2.0)"
            ),
            {"sha": "a" * 40},
        )
        conn.execute(
            text(
                "INSERT INTO jobs (id, build_id, name, position, needs, labels, condition, allow_failure,"
                " status, reason, enqueued, attempts, runs, worker, lease_token, lease_until, duration,"
                " tests, phases) VALUES (1, 1, 'unit', 0, '[]', '[]', true, false, 'failed', '', true,"
                " 1, 1, 'w', '', 0, 1, '{}', '{}')"
            )
        )
        for case_id, name, status in ((1, "T.a", "failed"), (2, "T.b", "flaky"), (3, "T.c", "passed")):
            conn.execute(
                text(
                    "INSERT INTO test_cases (id, build_id, job_id, suite, name, status, duration, message)"
                    " VALUES (:id, 1, 1, 's', :name, :status, 0.5, 'old message')"
                ),
                {"id": case_id, "name": name, "status": status},
            )

    migrate(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("test_cases")}
    assert {"key", "trace", "output", "classname", "file", "line", "flaky"} <= columns
    indexes = {i["name"] for i in inspect(engine).get_indexes("test_cases")}
    assert {"ix_test_cases_key_build", "ix_test_cases_build_status"} <= indexes
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, key, flaky, trace, output FROM test_cases ORDER BY id")).all()
    assert [(r[0], r[1], bool(r[2]), r[3], r[4]) for r in rows] == [
        ("T.a", case_key("unit", "s", "T.a"), False, "", ""),
        ("T.b", case_key("unit", "s", "T.b"), True, "", ""),
        ("T.c", case_key("unit", "s", "T.c"), False, "", ""),
    ]

    # A build made after the upgrade lines up with the old one: its comparison and history see it.
    store = BuildStore(session_factory(engine))
    if (
        engine.url.get_backend_name() == "postgresql"
    ):  # rows inserted with explicit ids: move the sequences on
        with engine.begin() as conn:
            for table in ("builds", "jobs", "test_cases"):
                conn.execute(text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))"))
    new = finished_build(store, [junit([("a", "passed"), ("b", "failed")])])
    queries = TestQueries(session_factory(engine))
    build = {"id": new, "repo": "o/app", "branch": "main", "tag": ""}
    assert queries.previous_build(build) == 1
    assert queries.failing(1) == {case_key("unit", "s", "T.a"): "failed"}
    history = queries.history([case_key("unit", "s", "T.a")], [b.id for b in queries.recent_builds(build)])
    assert history == {case_key("unit", "s", "T.a"): {1: "failed", new: "passed"}}
    engine.dispose()
