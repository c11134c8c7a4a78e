"""The build store's atomic transitions, on SQLite and, when RUNNER_TEST_POSTGRES_URL is set, PostgreSQL.

Claims, enqueue flags, build settling and delivery dedupe are raced from threads: exactly one
caller may win each transition, whatever the database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from server_helpers import empty_database
from sqlalchemy import inspect, text

from runner.server.db import make_engine, migrate, session_factory
from runner.server.models import Base
from runner.server.store import BuildPlan, BuildStore, JobPlan

POSTGRES = os.environ.get("RUNNER_TEST_POSTGRES_URL", "")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not POSTGRES, reason="RUNNER_TEST_POSTGRES_URL is not set (CI sets it)"),
    ),
]


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


def plan(branch: str = "main", jobs: tuple[str, ...] = ("a", "b")) -> BuildPlan:
    return BuildPlan(forge="github", repo="o/r", repo_url="file:///r", ref=f"refs/heads/{branch}",
                     sha="f" * 40, branch=branch, jobs=[JobPlan(name) for name in jobs])  # fmt: skip


def race(count: int, call) -> list:  # type: ignore[no-untyped-def]
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda i: call(i), range(count)))


def test_migrations_make_the_models_schema_and_run_again_harmlessly(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"builds", "jobs", "steps", "test_cases", "artifacts", "deliveries", "alembic_version"} <= tables
    for table in Base.metadata.sorted_tables:
        columns = {c["name"] for c in inspect(engine).get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_processes_migrating_at_once_all_succeed(tmp_path):
    url = f"sqlite:///{tmp_path / 'race.db'}"
    code = "import sys; from runner.server.db import make_engine, migrate; migrate(make_engine(sys.argv[1]))"
    processes = [subprocess.Popen([sys.executable, "-c", code, url]) for _ in range(3)]
    assert [p.wait(timeout=60) for p in processes] == [0, 0, 0]


def test_one_claim_wins_and_a_dead_worker_s_lease_can_be_taken_over(store):
    build_id, _ = store.create_build(plan())
    job = store.jobs(build_id)[0]
    outcomes = race(8, lambda i: store.claim_job(job.id, f"token-{i}", f"w{i}", 30))
    assert sorted(outcomes) == ["busy"] * 7 + ["claimed"]
    winner = store.job(job.id)
    assert winner.attempts == 1 and store.heartbeat(job.id, winner.lease_token, 30)
    assert not store.heartbeat(job.id, "someone-else", 30)
    assert store.heartbeat(job.id, winner.lease_token, 0.05)  # the lease is about to lapse...
    time.sleep(0.1)
    assert store.claim_job(job.id, "new", "w9", 30) == "claimed"  # ...and another worker takes the job
    assert store.job(job.id).attempts == 2
    assert not store.finish_job(job.id, winner.lease_token, "passed", "", 1, 1.0)  # the lost run is dropped
    assert store.finish_job(job.id, "new", "passed", "", 1, 1.0)
    assert store.claim_job(job.id, "late", "w10", 30) == "finished"
    assert store.claim_job(10_000, "x", "w", 30) == "missing"


def test_a_lost_job_is_taken_for_resending_once_per_grace_period(store):
    build_id, _ = store.create_build(plan())
    a, b = store.jobs(build_id)
    store.claim_job(a.id, "dead", "w1", 0.05)  # its worker dies: the lease is never renewed
    store.claim_job(b.id, "alive", "w2", 30)
    time.sleep(0.2)
    assert sorted(race(4, lambda i: tuple(store.take_lost_jobs(0.1)))) == [(), (), (), ((a.id, []),)]
    assert store.take_lost_jobs(0.1) == []  # not again before another grace period
    assert store.claim_job(a.id, "new", "w3", 30) == "claimed"


def test_a_sent_job_nobody_claims_is_taken_for_resending_once_per_wait(store):
    """Its message died with a worker (or was never sent): the sweep sends it again, once a wait."""
    build_id, _ = store.create_build(plan())
    a, b = store.jobs(build_id)
    assert store.take_unclaimed_jobs(0.0) == []  # never sent: advance() sends it, not the sweep
    assert store.mark_enqueued(a.id) and store.mark_enqueued(b.id)
    assert store.claim_job(b.id, "alive", "w2", 30) == "claimed"
    assert store.take_unclaimed_jobs(30) == []  # sent just now
    time.sleep(0.2)
    assert sorted(race(4, lambda i: tuple(store.take_unclaimed_jobs(0.1)))) == [(), (), (), ((a.id, []),)]
    assert store.take_unclaimed_jobs(0.1) == []  # not again before another wait
    time.sleep(0.2)
    assert store.take_unclaimed_jobs(0.1) == [(a.id, [])]
    assert store.claim_job(a.id, "new", "w3", 30) == "claimed"
    time.sleep(0.2)
    assert store.take_unclaimed_jobs(0.1) == []  # claimed: the lease sweep's business now


def test_a_job_is_flagged_enqueued_once_and_a_build_finishes_once(store):
    build_id, _ = store.create_build(plan())
    job = store.jobs(build_id)[0]
    assert sorted(race(6, lambda i: store.mark_enqueued(job.id))) == [False] * 5 + [True]
    assert store.mark_enqueued(job.id, False) and store.mark_enqueued(job.id)
    assert sorted(race(6, lambda i: store.finish_build(build_id, "passed"))) == [False] * 5 + [True]


def test_a_delivery_makes_one_build_even_when_raced(store):
    results = race(6, lambda i: store.create_build(plan(), ("github", "d-1")))
    created = [build_id for build_id, new in results if new]
    assert len(created) == 1
    assert {build_id for build_id, _ in results} == set(created)
    assert store.delivery_build("github", "d-1") == (True, created[0])
    assert store.delivery_build("gitlab", "d-1") == (False, None)


def test_cancel_settles_queued_jobs_and_leaves_running_ones_to_their_worker(store):
    build_id, _ = store.create_build(plan())
    a, _b = store.jobs(build_id)
    store.claim_job(a.id, "t", "w", 30)
    assert store.request_cancel(build_id, "stop")
    assert store.cancel_requested(build_id)
    statuses = {job.name: job.status for job in store.jobs(build_id)}
    assert statuses == {"a": "running", "b": "canceled"}
    store.finish_build(build_id, "canceled")
    assert not store.request_cancel(build_id, "again")


def test_superseded_builds_are_the_unfinished_older_ones_of_the_branch(store):
    old, _ = store.create_build(plan("main"))
    done, _ = store.create_build(plan("main"))
    store.finish_build(done, "passed")
    other, _ = store.create_build(plan("dev"))
    new, _ = store.create_build(plan("main"))
    assert store.unfinished_builds("o/r", "main", new) == [old]
    assert other not in store.unfinished_builds("o/r", "main", new)
