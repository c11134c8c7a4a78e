"""The reads behind the dashboard, the build list and the badge: one query per page section.

The dashboard's branches come from one grouped query (the latest build of each repository and
branch), their trends from one query (a UNION ALL of the last `TREND` builds of each of those
branches, each an index walk) plus one for those builds' test counts; the queue is one join of
jobs and builds; the build list is keyset-paged on the build id, so a deep page costs what the
first one does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from runner.server.models import FINISHED, Build, Job

TREND = 20  # builds drawn in a branch's trend
BRANCHES = 200  # most recently built branches on the dashboard
QUEUE = 100  # queue rows shown
PAGE = 50  # builds per page of the build list
STATUSES = ("queued", "running", "passed", "failed", "error", "canceled", "skipped")


def build_duration(started: float | None, finished: float | None, now: float) -> float | None:
    """Seconds a build ran: to its end, or until now while it runs; None before it starts."""
    if started is None:
        return None
    return max(0.0, (finished if finished is not None else now) - started)


@dataclass
class TrendPoint:
    build_id: int
    status: str
    duration: float | None
    tests_total: int = 0
    tests_failed: int = 0


@dataclass
class BranchRow:
    repo: str
    branch: str
    build_id: int
    status: str
    sha: str
    message: str
    author: str
    created_at: float
    duration: float | None
    trend: list[TrendPoint] = field(default_factory=list)  # oldest first


@dataclass
class RepoGroup:
    repo: str
    branches: list[BranchRow]


@dataclass
class QueueItem:
    build_id: int
    repo: str
    ref: str
    job: str
    status: str  # queued | running
    enqueued: bool  # False: waiting for its needs
    needs: list[str]
    labels: list[str]
    worker: str
    since: float


@dataclass
class BuildRow:
    id: int
    repo: str
    ref: str  # the branch, the tag, or the full ref
    branch: str
    event: str
    sha: str
    message: str
    author: str
    status: str
    created_at: float
    duration: float | None


@dataclass
class BuildPage:
    builds: list[BuildRow]
    total: int
    newer: int | None  # `after=` of the previous (newer) page, None on the first
    older: int | None  # `before=` of the next (older) page, None on the last


def _ref(branch: str, tag: str, ref: str) -> str:
    return branch or tag or ref


class DashboardQueries:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # ---- the dashboard ----

    def branches(self, repo: str | None = None, limit: int = BRANCHES, trend: int = TREND) -> list[RepoGroup]:
        """Repositories (or `repo`) with their branches' latest builds and trends, most recent first."""
        now = time.time()
        only = [Build.repo == repo] if repo else []
        latest = (
            select(func.max(Build.id).label("id"))
            .where(Build.branch != "", *only)
            .group_by(Build.repo, Build.branch)
            .subquery()
        )
        query = select(Build).join(latest, Build.id == latest.c.id).order_by(Build.id.desc()).limit(limit)
        with self.sessions() as s:
            rows = [
                BranchRow(
                    repo=b.repo,
                    branch=b.branch,
                    build_id=b.id,
                    status=b.status,
                    sha=b.sha,
                    message=b.message,
                    author=b.author,
                    created_at=b.created_at,
                    duration=build_duration(b.started_at, b.finished_at, now),
                )
                for b in s.scalars(query)
            ]
            trends = self._trends(s, [(r.repo, r.branch) for r in rows], trend, now) if rows else {}
        groups: dict[str, RepoGroup] = {}
        for row in rows:
            row.trend = trends.get((row.repo, row.branch), [])
            groups.setdefault(row.repo, RepoGroup(row.repo, [])).branches.append(row)
        return list(groups.values())

    def _trends(
        self, s: Session, pairs: list[tuple[str, str]], size: int, now: float
    ) -> dict[tuple[str, str], list[TrendPoint]]:
        # One statement of one small index walk per branch (repo, branch, then id backwards, `size`
        # rows), so the cost follows the branches shown, not the builds stored.
        # Written as text: SQLAlchemy takes longer to build and compile 200 subqueries than the
        # database takes to run them.
        table = Build.__tablename__
        recent = (
            text(
                " UNION ALL ".join(
                    f"SELECT * FROM (SELECT id, repo, branch, status, started_at, finished_at FROM {table} "
                    f"WHERE repo = :r{i} AND branch = :b{i} ORDER BY id DESC LIMIT :size) AS t{i}"
                    for i in range(len(pairs))
                )
            )
            .columns(Build.id, Build.repo, Build.branch, Build.status, Build.started_at, Build.finished_at)
            .subquery("recent")
        )
        values: dict[str, Any] = {"size": size}
        for i, (repo, branch) in enumerate(pairs):
            values[f"r{i}"], values[f"b{i}"] = repo, branch
        points: dict[int, tuple[tuple[str, str], TrendPoint]] = {}
        rows = [tuple(row) for row in s.execute(select(recent), values)]
        rows.sort(key=lambda row: row[0])  # by id, oldest first (plain tuples: Rows compare slowly)
        for bid, repo, branch, status, started, finished in rows:
            points[bid] = ((repo, branch), TrendPoint(bid, status, build_duration(started, finished, now)))
        # the test counts summed in the database, which reads the JSON faster than Python does
        counts = select(
            Job.build_id,
            func.sum(Job.tests["total"].as_integer()),
            func.sum(Job.tests["failed"].as_integer()),
            func.sum(Job.tests["error"].as_integer()),
        ).where(Job.build_id.in_(select(recent.c.id)))
        for bid, total, failed, errors in s.execute(counts.group_by(Job.build_id), values):
            if bid in points:
                point = points[bid][1]
                point.tests_total = int(total or 0)
                point.tests_failed = int(failed or 0) + int(errors or 0)
        trends: dict[tuple[str, str], list[TrendPoint]] = {}
        for key, point in points.values():  # ascending ids: oldest first
            trends.setdefault(key, []).append(point)
        return trends

    def queue(self, limit: int = QUEUE) -> tuple[list[QueueItem], int]:
        """Jobs waiting or running (running first, then oldest build first), and how many in all."""
        waiting = Job.status.in_(("queued", "running"))
        query = (
            select(
                Job.name,
                Job.status,
                Job.enqueued,
                Job.needs,
                Job.labels,
                Job.worker,
                Job.started_at,
                Build.id,
                Build.repo,
                Build.branch,
                Build.tag,
                Build.ref,
                Build.created_at,
            )
            .join(Build, Job.build_id == Build.id)
            .where(waiting)
            .order_by((Job.status == "running").desc(), Build.id, Job.position)
            .limit(limit)
        )
        with self.sessions() as s:
            items = [
                QueueItem(
                    build_id=row.id,
                    repo=row.repo,
                    ref=_ref(row.branch, row.tag, row.ref),
                    job=row.name,
                    status=row.status,
                    enqueued=bool(row.enqueued),
                    needs=list(row.needs or []),
                    labels=list(row.labels or []),
                    worker=row.worker,
                    since=(row.started_at if row.status == "running" and row.started_at else row.created_at),
                )
                for row in s.execute(query)
            ]
            total = s.scalar(select(func.count()).select_from(Job).where(waiting)) or 0
        return items, int(total)

    # ---- the build list ----

    def page(
        self,
        repo: str | None = None,
        branch: str | None = None,
        status: str | None = None,
        before: int | None = None,
        after: int | None = None,
        size: int = PAGE,
    ) -> BuildPage:
        """One page of builds, newest first: those below `before`, or the `size` just above `after`."""
        now = time.time()
        filters = []
        if repo:
            filters.append(Build.repo == repo)
        if branch:
            filters.append(Build.branch == branch)
        if status:
            filters.append(Build.status == status)
        columns = (
            Build.id,
            Build.repo,
            Build.branch,
            Build.tag,
            Build.ref,
            Build.event,
            Build.sha,
            Build.message,
            Build.author,
            Build.status,
            Build.created_at,
            Build.started_at,
            Build.finished_at,
        )
        query = select(*columns).where(*filters)
        if after is not None:
            query = query.where(Build.id > after).order_by(Build.id.asc())
        else:
            if before is not None:
                query = query.where(Build.id < before)
            query = query.order_by(Build.id.desc())
        with self.sessions() as s:
            found = list(s.execute(query.limit(size + 1)))
            more = len(found) > size  # beyond this page in the direction read
            found = found[:size]
            if after is not None:
                found.reverse()
            total = int(s.scalar(select(func.count()).select_from(Build).where(*filters)) or 0)
            builds = [
                BuildRow(
                    id=r.id,
                    repo=r.repo,
                    ref=_ref(r.branch, r.tag, r.ref),
                    branch=r.branch,
                    event=r.event,
                    sha=r.sha,
                    message=r.message,
                    author=r.author,
                    status=r.status,
                    created_at=r.created_at,
                    duration=build_duration(r.started_at, r.finished_at, now),
                )
                for r in found
            ]
            if not builds:
                return BuildPage([], total, None, None)
            newest, oldest = builds[0].id, builds[-1].id
            if after is not None:
                has_newer = more
                has_older = self._exists(s, filters, Build.id < oldest)
            else:
                has_older = more
                has_newer = before is not None and self._exists(s, filters, Build.id > newest)
        return BuildPage(builds, total, newest if has_newer else None, oldest if has_older else None)

    @staticmethod
    def _exists(s: Session, filters: list[Any], bound: Any) -> bool:
        return s.scalar(select(Build.id).where(*filters, bound).limit(1)) is not None

    def repos(self, limit: int = 500) -> list[str]:
        with self.sessions() as s:
            return list(s.scalars(select(Build.repo).distinct().order_by(Build.repo).limit(limit)))

    def branch_names(self, repo: str | None, limit: int = 200) -> list[str]:
        query = select(Build.branch).where(Build.branch != "").distinct().order_by(Build.branch).limit(limit)
        if repo:
            query = query.where(Build.repo == repo)
        with self.sessions() as s:
            return list(s.scalars(query))

    # ---- the badge ----

    def badge_status(self, repo: str, branch: str | None) -> str | None:
        """The latest finished build's status; `running` while the first build runs; None without builds."""
        filters = [Build.repo == repo]
        if branch:
            filters.append(Build.branch == branch)
        with self.sessions() as s:
            finished = s.scalar(
                select(Build.status)
                .where(*filters, Build.status.in_(FINISHED))
                .order_by(Build.id.desc())
                .limit(1)
            )
            if finished is not None:
                return finished
            unfinished = s.scalar(select(Build.id).where(*filters).limit(1))
            return "running" if unfinished is not None else None
