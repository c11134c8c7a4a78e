"""The build store's reads, shaped as the JSON API answers them (contract.md §3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from runner.server.models import FINISHED, Artifact, Build, Job

MAX_LIMIT = 500


def iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")


def _tests(counts: dict[str, Any] | None) -> dict[str, int]:
    base = dict.fromkeys(("total", "passed", "failed", "error", "skipped", "flaky"), 0)
    base.update({k: int(v) for k, v in (counts or {}).items() if k in base})
    return base


def job_dict(job: Job, artifacts: list[Artifact] | None = None) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "reason": job.reason,
        "needs": list(job.needs),
        "labels": list(job.labels),
        "allow_failure": job.allow_failure,
        "attempts": job.attempts,
        "worker": job.worker,
        "started_at": iso(job.started_at) if job.status != "queued" else None,
        "finished_at": iso(job.finished_at),
        "duration": round(job.duration, 3),
        "steps": [
            {
                "index": step.index,
                "name": step.name,
                "status": step.status,
                "exit_code": step.exit_code,
                "reason": step.reason,
                "duration": round(step.duration, 3),
            }
            for step in job.steps
        ],
        "tests": _tests(job.tests),
        "phases": dict(job.phases or {}),
        "artifacts": [{"path": a.path, "size": a.size} for a in artifacts or []],
    }


def build_dict(build: Build, jobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": build.id,
        "forge": build.forge,
        "repo": build.repo,
        "repo_url": build.repo_url,
        "ref": build.ref,
        "branch": build.branch,
        "tag": build.tag,
        "sha": build.sha,
        "event": build.event,
        "message": build.message,
        "author": build.author,
        "status": build.status,
        "reason": build.reason,
        "created_at": iso(build.created_at),
        "started_at": iso(build.started_at),
        "finished_at": iso(build.finished_at),
    }
    if jobs is not None:
        data["jobs"] = jobs
    return data


class BuildQueries:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def list_builds(
        self, repo: str | None = None, branch: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        query = select(Build).options(selectinload(Build.jobs).selectinload(Job.steps))
        if repo:
            query = query.where(Build.repo == repo)
        if branch:
            query = query.where(Build.branch == branch)
        if status:
            query = query.where(Build.status == status)
        query = query.order_by(Build.id.desc()).limit(max(1, min(limit, MAX_LIMIT)))
        with self.sessions() as s:
            return [build_dict(b, [job_dict(j) for j in b.jobs]) for b in s.scalars(query)]

    def get(self, build_id: int) -> dict[str, Any] | None:
        with self.sessions() as s:
            build = s.scalars(
                select(Build)
                .where(Build.id == build_id)
                .options(selectinload(Build.jobs).selectinload(Job.steps))
            ).first()
            if build is None:
                return None
            job_ids = [j.id for j in build.jobs]
            artifacts: dict[int, list[Artifact]] = {}
            if job_ids:
                for artifact in s.scalars(
                    select(Artifact).where(Artifact.job_id.in_(job_ids)).order_by(Artifact.path)
                ):
                    artifacts.setdefault(artifact.job_id, []).append(artifact)
            return build_dict(build, [job_dict(j, artifacts.get(j.id)) for j in build.jobs])

    def job_by_name(self, build_id: int, name: str) -> Job | None:
        with self.sessions() as s:
            return s.scalars(select(Job).where(Job.build_id == build_id, Job.name == name)).first()

    def artifact(self, build_id: int, job_name: str, path: str) -> Artifact | None:
        with self.sessions() as s:
            return s.scalars(
                select(Artifact)
                .join(Job, Artifact.job_id == Job.id)
                .where(Job.build_id == build_id, Job.name == job_name, Artifact.path == path)
            ).first()

    def status_counts(self) -> dict[str, int]:
        with self.sessions() as s:
            return {
                status: n
                for status, n in s.execute(select(Build.status, func.count()).group_by(Build.status))
            }

    def latest_status(self, repo: str, branch: str | None) -> str | None:
        query = select(Build.status).where(Build.repo == repo, Build.status.in_(FINISHED))
        if branch:
            query = query.where(Build.branch == branch)
        with self.sessions() as s:
            return s.scalars(query.order_by(Build.id.desc()).limit(1)).first()

    def finished_jobs(self, since_id: int) -> list[tuple[int, str, float, dict[str, Any]]]:
        """(id, status, duration, phases) of jobs that ran, finished, with an id above `since_id`.

        Jobs finish out of id order, so the caller passes the highest id below which every job has
        finished (see `Metrics`).
        """
        with self.sessions() as s:
            rows = s.execute(
                select(Job.id, Job.status, Job.duration, Job.phases)
                .where(Job.id > since_id, Job.finished_at.is_not(None), Job.attempts > 0)
                .order_by(Job.id)
            )
            return [(i, st, d, ph or {}) for i, st, d, ph in rows]

    def waiting_labels(self) -> list[list[str]]:
        """The labels of jobs waiting in a queue (to know which queues to measure)."""
        with self.sessions() as s:
            rows = s.scalars(select(Job.labels).where(Job.status == "queued", Job.enqueued.is_(True)))
            return [list(labels or []) for labels in rows]

    def oldest_unfinished_job(self) -> int | None:
        with self.sessions() as s:
            return s.scalar(select(func.min(Job.id)).where(Job.finished_at.is_(None)))
