"""The build store's writes: builds with their jobs and deliveries, job claims, progress, settling.

Every method opens its own short transaction, so the web server and any number of workers can
share the store. The rules that need atomicity are single conditional UPDATEs: claiming a job
(`claim_job`), flagging a job as enqueued (`mark_enqueued`) and finishing a build (`finish_build`),
so that two processes racing for the same transition never both win.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from runner.server.models import FINISHED, Artifact, Build, Delivery, Job, Step, TestCase
from runner.server.testdiff import case_key

ClaimOutcome = Literal["claimed", "busy", "finished", "missing"]

#: Characters kept of a case's trace, and of each of its stdout and stderr (64 KiB of ASCII).
MAX_TEXT = 64 * 1024


@dataclass
class JobPlan:
    """A job of a new build as the server planned it from ci.yml."""

    name: str
    needs: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    condition: bool = True
    allow_failure: bool = False


@dataclass
class BuildPlan:
    forge: str
    repo: str
    repo_url: str
    ref: str
    sha: str
    branch: str = ""
    tag: str = ""
    event: str = "push"
    message: str = ""
    author: str = ""
    jobs: list[JobPlan] = field(default_factory=list)
    status: str = "queued"
    reason: str = ""


class BuildStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # --- deliveries and builds -------------------------------------------------------------

    def delivery_build(self, forge: str, delivery_id: str) -> tuple[bool, int | None]:
        """(seen, build id) of an earlier delivery with this id."""
        with self.sessions() as s:
            row = s.scalars(
                select(Delivery).where(Delivery.forge == forge, Delivery.delivery_id == delivery_id)
            ).first()
            return (row is not None, row.build_id if row else None)

    def create_build(self, plan: BuildPlan, delivery: tuple[str, str] | None = None) -> tuple[int, bool]:
        """Record a build, its jobs and its delivery in one transaction: (build id, created).

        A delivery id seen before (even by a concurrent request) gives the original build's id and False.
        """
        now = time.time()
        with self.sessions() as s:
            build = Build(
                forge=plan.forge, repo=plan.repo, repo_url=plan.repo_url, ref=plan.ref, sha=plan.sha,
                branch=plan.branch, tag=plan.tag, event=plan.event, message=plan.message[:4000],
                author=plan.author, status=plan.status, reason=plan.reason, cancel_requested=False,
                created_at=now, finished_at=now if plan.status in FINISHED else None,
            )  # fmt: skip
            s.add(build)
            s.flush()
            for position, job in enumerate(plan.jobs):
                s.add(
                    Job(
                        build_id=build.id,
                        name=job.name,
                        position=position,
                        needs=list(job.needs),
                        labels=list(job.labels),
                        condition=job.condition,
                        allow_failure=job.allow_failure,
                        status="queued",
                        reason="",
                        enqueued=False,
                        attempts=0,
                        runs=0,
                        worker="",
                        lease_token="",
                        lease_until=0.0,
                        duration=0.0,
                        tests={},
                        phases={},
                    )
                )
            if delivery is not None:
                s.add(
                    Delivery(forge=delivery[0], delivery_id=delivery[1], build_id=build.id, received_at=now)
                )
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                if delivery is None:
                    raise
                seen, original = self.delivery_build(*delivery)
                if not seen:
                    raise
                return original or 0, False
            return build.id, True

    def record_delivery(self, forge: str, delivery_id: str, build_id: int | None) -> None:
        """Remember a delivery that made no build (so a repeat is answered the same way)."""
        with self.sessions() as s:
            s.add(Delivery(forge=forge, delivery_id=delivery_id, build_id=build_id, received_at=time.time()))
            try:
                s.commit()
            except IntegrityError:
                s.rollback()

    def forget_delivery(self, forge: str, delivery_id: str) -> None:
        """A delivery whose build could not be enqueued: let the forge's redelivery try again."""
        with self.sessions() as s:
            row = s.scalars(
                select(Delivery).where(Delivery.forge == forge, Delivery.delivery_id == delivery_id)
            ).first()
            if row is not None:
                s.delete(row)
                s.commit()

    def build(self, build_id: int) -> Build | None:
        with self.sessions() as s:
            return s.get(Build, build_id)

    def jobs(self, build_id: int) -> list[Job]:
        with self.sessions() as s:
            return list(s.scalars(select(Job).where(Job.build_id == build_id).order_by(Job.position)))

    def job(self, job_id: int) -> Job | None:
        with self.sessions() as s:
            return s.get(Job, job_id)

    def unfinished_builds(self, repo: str, branch: str, before: int) -> list[int]:
        """Earlier builds of the same branch that have not finished: superseded by build `before`."""
        with self.sessions() as s:
            rows = s.scalars(
                select(Build.id).where(
                    Build.repo == repo,
                    Build.branch == branch,
                    Build.id < before,
                    Build.finished_at.is_(None),
                    Build.cancel_requested.is_(False),
                )
            )
            return list(rows)

    def request_cancel(self, build_id: int, reason: str) -> bool:
        """Flag the build canceled; its queued jobs settle at once, running ones when their worker sees it.

        False when the build does not exist or had already finished.
        """
        now = time.time()
        with self.sessions() as s:
            build = s.get(Build, build_id)
            if build is None or build.finished_at is not None:
                return False
            build.cancel_requested = True
            build.reason = build.reason or reason
            s.execute(
                update(Job)
                .where(Job.build_id == build_id, Job.status == "queued")
                .values(status="canceled", reason=reason, finished_at=now)
            )
            s.commit()
            return True

    def cancel_requested(self, build_id: int) -> bool:
        with self.sessions() as s:
            value = s.scalar(select(Build.cancel_requested).where(Build.id == build_id))
            return bool(value)

    # --- scheduling -------------------------------------------------------------------------

    def settle_job(self, job_id: int, status: str, reason: str) -> bool:
        """A queued job that will never run (skipped, canceled, error): True if this call settled it."""
        with self.sessions() as s:
            result = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "queued")
                .values(status=status, reason=reason, finished_at=time.time())
            )
            s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def mark_enqueued(self, job_id: int, value: bool = True) -> bool:
        """Flip a queued job's `enqueued` flag: only the caller that flips it sends the message.

        While a job is queued its `lease_until` holds when it was last sent (`take_unclaimed_jobs`).
        """
        with self.sessions() as s:
            result = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "queued", Job.enqueued.is_(not value))
                .values(enqueued=value, lease_until=time.time() if value else 0.0)
            )
            s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def start_build(self, build_id: int) -> None:
        with self.sessions() as s:
            s.execute(
                update(Build)
                .where(Build.id == build_id, Build.started_at.is_(None))
                .values(started_at=time.time(), status="running")
            )
            s.commit()

    def finish_build(self, build_id: int, status: str, reason: str = "") -> bool:
        """Settle the build once: True only for the caller that did (it reports the status)."""
        with self.sessions() as s:
            result = s.execute(
                update(Build)
                .where(Build.id == build_id, Build.finished_at.is_(None))
                .values(status=status, finished_at=time.time(), reason=reason)
            )
            s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def status_reported(self, build_id: int, status: str) -> None:
        """The forge was sent the build's final `status` (or there was nothing to send)."""
        with self.sessions() as s:
            s.execute(update(Build).where(Build.id == build_id).values(status_reported=status))
            s.commit()

    def unreported_builds(self, grace: float, limit: int = 50) -> list[Build]:
        """Builds finished more than `grace` seconds ago whose final status the forge was not sent.

        The oldest first, at most `limit`; the conditions are the partial index's (`ix_builds_unreported`),
        so only the builds still to report are read, never the history.
        """
        with self.sessions() as s:
            return list(
                s.scalars(
                    select(Build)
                    .where(
                        Build.status_reported != Build.status,
                        Build.finished_at.is_not(None),
                        Build.finished_at < time.time() - grace,
                    )
                    .order_by(Build.finished_at)
                    .limit(limit)
                )
            )

    # --- a worker's job ----------------------------------------------------------------------

    def claim_job(self, job_id: int, token: str, worker: str, lease: float) -> ClaimOutcome:
        """Take a job for a run: queued, or running under a lease that expired (its worker died)."""
        now = time.time()
        with self.sessions() as s:
            job = s.get(Job, job_id)
            if job is None:
                return "missing"
            if job.status in FINISHED:
                return "finished"
            result = s.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    (Job.status == "queued") | ((Job.status == "running") & (Job.lease_until < now)),
                )
                .values(
                    status="running",
                    lease_token=token,
                    lease_until=now + lease,
                    worker=worker,
                    attempts=Job.attempts + 1,
                    started_at=now,
                    reason="",
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                s.rollback()
                return "busy"
            s.query(Step).filter(Step.job_id == job_id).delete()  # a rerun after a crash starts afresh
            s.query(TestCase).filter(TestCase.job_id == job_id).delete()
            s.query(Artifact).filter(Artifact.job_id == job_id).delete()
            s.commit()
            return "claimed"

    def take_lost_jobs(self, grace: float) -> list[tuple[int, list[str]]]:
        """Running jobs whose lease ran out `grace` seconds ago: (id, labels), each taken once a grace.

        Taking one sets its lease to now, so that it is claimable at once but not taken again by
        the next sweep unless another grace period passes without a claim.
        """
        now = time.time()
        taken = []
        with self.sessions() as s:
            rows = s.execute(
                select(Job.id, Job.labels, Job.lease_token).where(
                    Job.status == "running", Job.lease_until < now - grace
                )
            ).all()
            for job_id, labels, token in rows:
                result = s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.lease_token == token, Job.lease_until < now - grace)
                    .values(lease_until=now)
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    taken.append((job_id, list(labels or [])))
            s.commit()
        return taken

    def take_unclaimed_jobs(self, wait: float) -> list[tuple[int, list[str]]]:
        """Queued jobs sent over `wait` seconds ago and never claimed: (id, labels), taken once a wait.

        Their message may be gone: a worker SIGKILLed while holding it unacknowledged (the broker gives
        it back only after its visibility timeout, hours), or a sender killed between `mark_enqueued`
        and the send. Sending again is harmless: claims keep a job from running twice.
        """
        now = time.time()
        taken = []
        with self.sessions() as s:
            rows = s.execute(
                select(Job.id, Job.labels, Job.lease_until).where(
                    Job.status == "queued", Job.enqueued.is_(True), Job.lease_until < now - wait
                )
            ).all()
            for job_id, labels, sent in rows:
                result = s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == "queued", Job.lease_until == sent)
                    .values(lease_until=now)
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    taken.append((job_id, list(labels or [])))
            s.commit()
        return taken

    def heartbeat(self, job_id: int, token: str, lease: float) -> bool:
        """Extend the claim; False when it was lost (another worker took the job over)."""
        with self.sessions() as s:
            result = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_token == token, Job.status == "running")
                .values(lease_until=time.time() + lease)
            )
            s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def step_started(self, job_id: int, index: int, name: str, at: float) -> None:
        with self.sessions() as s:
            step = s.scalars(select(Step).where(Step.job_id == job_id, Step.index == index)).first()
            if step is None:
                s.add(Step(job_id=job_id, index=index, name=name, status="running", reason="",
                           duration=0.0, started_at=at))  # fmt: skip
            else:
                step.name, step.status, step.started_at, step.exit_code = name, "running", at, None
            s.commit()

    def step_finished(self, job_id: int, index: int, name: str, values: dict[str, Any]) -> None:
        with self.sessions() as s:
            step = s.scalars(select(Step).where(Step.job_id == job_id, Step.index == index)).first()
            if step is None:
                step = Step(job_id=job_id, index=index, name=name, started_at=None)
                s.add(step)
            step.status = values["status"]
            step.exit_code = values.get("exit_code")
            step.reason = values.get("reason", "")
            step.duration = values.get("duration", 0.0)
            s.commit()

    def tests_collected(self, build_id: int, job_id: int, counts: dict[str, int], cases: list[Any]) -> None:
        """Replace the job's test cases (a retry's report replaces the earlier attempt's) in one insert."""
        with self.sessions() as s:
            job = s.get(Job, job_id)
            job_name = job.name if job is not None else ""
            s.query(TestCase).filter(TestCase.job_id == job_id).delete()
            rows = [case_row(build_id, job_id, job_name, case) for case in cases]
            if rows:
                s.execute(insert(TestCase), rows)
            if job is not None:
                job.tests = dict(counts)
            s.commit()

    def artifact_stored(self, job_id: int, path: str, size: int) -> None:
        with self.sessions() as s:
            s.add(Artifact(job_id=job_id, path=path, size=size))
            try:
                s.commit()
            except IntegrityError:
                s.rollback()

    def finish_job(
        self,
        job_id: int,
        token: str,
        status: str,
        reason: str,
        runs: int,
        duration: float,
        phases: dict[str, float] | None = None,
    ) -> bool:
        """Settle a claimed job; False when the claim was lost meanwhile (the result is dropped)."""
        with self.sessions() as s:
            result = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_token == token, Job.status == "running")
                .values(
                    status=status,
                    reason=reason[:2000],
                    runs=runs,
                    duration=duration,
                    finished_at=time.time(),
                    phases=dict(phases or {}),
                )
            )
            s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _head(text: str, limit: int = MAX_TEXT) -> str:
    """The start of a trace (where the assertion is), with a note of what was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[… {len(text) - limit} more characters not stored]"


def _tail(text: str, limit: int = MAX_TEXT) -> str:
    """The end of an output (what came just before the failure), with a note of what was cut."""
    if len(text) <= limit:
        return text
    return f"[… {len(text) - limit} earlier characters not stored]\n{text[-limit:]}"


def case_output(case: Any) -> str:
    """``<system-out>`` and ``<system-err>`` as one text, each bounded to its last `MAX_TEXT` characters;
    then the output of each earlier attempt that kept some (a flaky case's failed runs)."""
    parts = []
    for holder, label in ((case, ""), *((r, f"failed attempt {n} ") for n, r in enumerate(_reruns(case), 1))):
        stdout, stderr = _text(getattr(holder, "stdout", "")), _text(getattr(holder, "stderr", ""))
        if stdout:
            parts.append(f"--- {label}stdout ---\n{_tail(stdout)}" if label else _tail(stdout))
        if stderr:
            parts.append(f"--- {label}stderr ---\n{_tail(stderr)}")
    return "\n".join(parts)


def _reruns(case: Any) -> list[Any]:
    return list(getattr(case, "reruns", None) or ())


def case_trace(case: Any) -> str:
    """The failure's text, then each earlier failed attempt's (a flaky case passed in the end, so it has
    only those)."""
    trace = _text(getattr(case, "trace", ""))
    reruns = list(getattr(case, "reruns", None) or ())
    if not reruns:
        return _head(trace)
    flaky = getattr(case, "status", "") == "flaky"
    parts = []
    for number, rerun in enumerate(reruns, 1):
        head = f"--- {'failed attempt' if flaky else 'rerun'} {number} ({_text(getattr(rerun, 'kind', ''))})"
        message = _text(getattr(rerun, "message", ""))
        parts.append("\n".join(p for p in (head, message, _text(getattr(rerun, "trace", ""))) if p))
    if flaky:  # its own trace is the first failed attempt's
        return _head("\n".join(parts))
    return _head("\n".join([trace, *parts]) if trace else "\n".join(parts))


def case_row(build_id: int, job_id: int, job_name: str, case: Any) -> dict[str, Any]:
    """A `runner.reports.TestCase` (or anything with its attributes) as a `test_cases` row."""
    suite = _text(getattr(case, "suite", ""))
    name = _text(getattr(case, "full_name", None) or getattr(case, "name", ""))
    status = _text(getattr(case, "status", "error")) or "error"
    line = getattr(case, "line", None)
    return {
        "build_id": build_id,
        "job_id": job_id,
        "key": case_key(job_name, suite, name),
        "suite": suite,
        "classname": _text(getattr(case, "classname", "")),
        "name": name,
        "status": status,
        "flaky": status == "flaky",
        "duration": float(getattr(case, "time", 0.0) or 0.0),
        "file": _text(getattr(case, "file", ""))[:1000],
        "line": line if isinstance(line, int) else None,
        "message": _text(getattr(case, "message", ""))[:2000],
        "trace": case_trace(case),
        "output": case_output(case),
    }
