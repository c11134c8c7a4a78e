"""The build store's reads of test cases: counts, suites, the slowest, pages of cases, and history.

Every query names the build (and, for history, the case keys shown), so a page reads what it shows
and no more: a build of 5,000 cases renders from a few indexed queries (`ix_test_cases_build_status`
and `ix_test_cases_key_build`). Long IN lists are sent in chunks that every database accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from runner.server.models import FINISHED, Build, Job, TestCase

FAILING = ("failed", "error")
#: Statuses a page always shows (with the cases that were fixed): the rest is paged.
NOTEWORTHY = ("failed", "error", "flaky")
CHUNK = 500  # parameters per IN list (SQLite before 3.32 allows 999 in all)

#: The columns a list of cases needs (no trace or output: those are read only for cases shown).
BRIEF = (
    TestCase.id,
    TestCase.job_id,
    TestCase.key,
    TestCase.suite,
    TestCase.classname,
    TestCase.name,
    TestCase.status,
    TestCase.flaky,
    TestCase.duration,
    TestCase.file,
    TestCase.line,
    TestCase.message,
)


@dataclass(frozen=True)
class BuildRef:
    """A build as the history strip shows it."""

    id: int
    status: str
    sha: str
    created_at: float


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def text_filter(text: str) -> ColumnElement[bool]:
    """Case-insensitive substring of the name, suite, class name or message (wildcards taken literally)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(
        *(
            column.ilike(pattern, escape="\\")
            for column in (TestCase.name, TestCase.suite, TestCase.classname, TestCase.message)
        )
    )


class TestQueries:
    __test__ = False  # not a pytest test class

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def job_names(self, build_id: int) -> dict[int, tuple[int, str]]:
        """job id → (position, name) of the build's jobs."""
        with self.sessions() as s:
            rows = s.execute(select(Job.id, Job.position, Job.name).where(Job.build_id == build_id))
            return {job_id: (position, name) for job_id, position, name in rows}

    def status_counts(self, build_id: int) -> dict[str, int]:
        with self.sessions() as s:
            rows = s.execute(
                select(TestCase.status, func.count())
                .where(TestCase.build_id == build_id)
                .group_by(TestCase.status)
            )
            return {status: int(n) for status, n in rows}

    def suites(self, build_id: int) -> list[tuple[int, str, str, int, float]]:
        """(job id, suite, status, count, seconds) per suite and status."""
        with self.sessions() as s:
            rows = s.execute(
                select(
                    TestCase.job_id,
                    TestCase.suite,
                    TestCase.status,
                    func.count(),
                    func.sum(TestCase.duration),
                )
                .where(TestCase.build_id == build_id)
                .group_by(TestCase.job_id, TestCase.suite, TestCase.status)
            )
            return [(j, suite, st, int(n), float(d or 0.0)) for j, suite, st, n, d in rows]

    def slowest(self, build_id: int, limit: int = 10) -> list[Any]:
        with self.sessions() as s:
            query = (
                select(*BRIEF)
                .where(TestCase.build_id == build_id)
                .order_by(TestCase.duration.desc(), TestCase.id)
                .limit(limit)
            )
            return list(s.execute(query))

    def failing(self, build_id: int) -> dict[str, str]:
        """key → status of the build's failed and errored cases."""
        with self.sessions() as s:
            rows = s.execute(
                select(TestCase.key, TestCase.status).where(
                    TestCase.build_id == build_id, TestCase.status.in_(FAILING)
                )
            )
            return {key: status for key, status in rows}

    def noteworthy(self, build_id: int, also_keys: Iterable[str]) -> list[Any]:
        """The build's failing and flaky cases, and its cases with one of `also_keys` (fixed ones)."""
        found: dict[int, Any] = {}
        with self.sessions() as s:
            query = select(*BRIEF).where(TestCase.build_id == build_id, TestCase.status.in_(NOTEWORTHY))
            for row in s.execute(query):
                found[row.id] = row
            for batch in chunks(set(also_keys)):
                query = select(*BRIEF).where(TestCase.build_id == build_id, TestCase.key.in_(batch))
                for row in s.execute(query):
                    found[row.id] = row
        return list(found.values())

    def others(
        self,
        build_id: int,
        exclude: set[int],
        statuses: tuple[str, ...],
        text: str,
        offset: int,
        limit: int,
        key: str = "",
    ) -> tuple[int, list[Any]]:
        """(how many, one page) of the build's cases with one of `statuses`, but not the ids in `exclude`
        (matching `text`, and only the case `key` when given)."""
        conditions: list[ColumnElement[bool]] = [
            TestCase.build_id == build_id,
            TestCase.status.in_(statuses),
        ]
        if exclude:
            conditions.append(TestCase.id.not_in(sorted(exclude)))
        if text:
            conditions.append(text_filter(text))
        if key:
            conditions.append(TestCase.key == key)
        with self.sessions() as s:
            total = s.scalar(select(func.count()).select_from(TestCase).where(*conditions)) or 0
            if limit <= 0:
                return int(total), []
            query = select(*BRIEF).where(*conditions).order_by(TestCase.id).offset(offset).limit(limit)
            return int(total), list(s.execute(query))

    def details(self, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
        """case id → (trace, output), for the cases a page shows."""
        result: dict[int, tuple[str, str]] = {}
        with self.sessions() as s:
            for batch in chunks(ids):
                rows = s.execute(
                    select(TestCase.id, TestCase.trace, TestCase.output).where(TestCase.id.in_(batch))
                )
                for case_id, trace, output in rows:
                    result[case_id] = (trace or "", output or "")
        return result

    def case(self, build_id: int, case_id: int) -> tuple[str, TestCase] | None:
        """One case of the build in full, with its job's name."""
        with self.sessions() as s:
            row = s.execute(
                select(Job.name, TestCase)
                .join(Job, TestCase.job_id == Job.id)
                .where(TestCase.build_id == build_id, TestCase.id == case_id)
            ).first()
            return None if row is None else (row[0], row[1])

    def all_cases(self, build_id: int) -> list[Any]:
        """Every case of the build without trace and output, in report order."""
        with self.sessions() as s:
            query = select(*BRIEF).where(TestCase.build_id == build_id).order_by(TestCase.id)
            return list(s.execute(query))

    def recent_builds(self, build: dict[str, Any], limit: int = 20) -> list[BuildRef]:
        """The latest `limit` builds of the build's repository and branch (or tag) up to it, oldest first."""
        with self.sessions() as s:
            rows = s.execute(
                select(Build.id, Build.status, Build.sha, Build.created_at)
                .where(
                    Build.repo == build["repo"],
                    Build.branch == build["branch"],
                    Build.tag == build["tag"],
                    Build.id <= build["id"],
                )
                .order_by(Build.id.desc())
                .limit(limit)
            )
            return [BuildRef(i, st, sha, at) for i, st, sha, at in reversed(rows.all())]

    def previous_build(self, build: dict[str, Any]) -> int | None:
        """The latest finished build of the same repository and branch before this one."""
        with self.sessions() as s:
            return s.scalar(
                select(func.max(Build.id)).where(
                    Build.repo == build["repo"],
                    Build.branch == build["branch"],
                    Build.tag == build["tag"],
                    Build.id < build["id"],
                    Build.status.in_(FINISHED),
                )
            )

    def history(self, keys: Iterable[str], build_ids: list[int]) -> dict[str, dict[int, str]]:
        """key → {build id → status} over `build_ids`, for the cases shown."""
        result: dict[str, dict[int, str]] = {}
        if not build_ids:
            return result
        with self.sessions() as s:
            for batch in chunks(set(keys)):
                rows = s.execute(
                    select(TestCase.key, TestCase.build_id, TestCase.status).where(
                        TestCase.key.in_(batch), TestCase.build_id.in_(build_ids)
                    )
                )
                for key, build_id, status in rows:
                    statuses = result.setdefault(key, {})
                    # a case reported twice in one build (two report files): the worse status shows
                    if statuses.get(build_id) not in FAILING:
                        statuses[build_id] = status
        return result
