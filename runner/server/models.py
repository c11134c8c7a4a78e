"""The build store's tables (SQLAlchemy 2): builds, jobs, steps, test cases, artifacts, deliveries.

Times are epoch seconds (floats) so that SQLite and PostgreSQL store them the same way; the API
turns them into ISO 8601. The schema itself is made by the Alembic migration in `migrations/`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

FINISHED = ("passed", "failed", "skipped", "canceled", "error")


class Base(DeclarativeBase):
    pass


class Build(Base):
    __tablename__ = "builds"
    __table_args__ = (
        Index("ix_builds_repo_branch", "repo", "branch"),
        # the finished builds whose final status the forge has not been sent (`recovery.report_lost_statuses`)
        Index(
            "ix_builds_unreported",
            "finished_at",
            sqlite_where=text("status_reported <> status"),
            postgresql_where=text("status_reported <> status"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forge: Mapped[str] = mapped_column(String(20))  # github | gitlab | gitea | api
    repo: Mapped[str] = mapped_column(String(200))  # owner/name
    repo_url: Mapped[str] = mapped_column(Text)
    ref: Mapped[str] = mapped_column(String(250))
    branch: Mapped[str] = mapped_column(String(250), default="")
    tag: Mapped[str] = mapped_column(String(250), default="")
    sha: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(20), default="push")
    message: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # the last final status the forge was sent ('' before any): differing from `status` once the
    # build finished, it is still to send (a worker died between settling the build and reporting)
    status_reported: Mapped[str] = mapped_column(String(20), default="", server_default="")

    jobs: Mapped[list[Job]] = relationship(back_populates="build", order_by="Job.position")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("build_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    build_id: Mapped[int] = mapped_column(ForeignKey("builds.id"), index=True)
    name: Mapped[str] = mapped_column(String(250))
    position: Mapped[int] = mapped_column(Integer)
    needs: Mapped[list[str]] = mapped_column(JSON, default=list)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    condition: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_failure: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    reason: Mapped[str] = mapped_column(Text, default="")
    enqueued: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims by workers (runs started)
    runs: Mapped[int] = mapped_column(Integer, default=0)  # attempts the engine made (retry:)
    worker: Mapped[str] = mapped_column(String(250), default="")
    lease_token: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    tests: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    phases: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict
    )  # phase -> seconds (image, services...)

    build: Mapped[Build] = relationship(back_populates="jobs")
    steps: Mapped[list[Step]] = relationship(order_by="Step.index", cascade="all, delete-orphan")


class Step(Base):
    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("job_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(250))
    status: Mapped[str] = mapped_column(String(20), default="running")
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(40), default="")
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class TestCase(Base):
    """One test case of a job's reports.

    ``key`` names the case across builds (a digest of job, suite and name, see `testdiff.case_key`):
    the comparison with the previous build and the history strip look cases up by it, so it is
    indexed with the build; ``trace`` and ``output`` are bounded when stored (`store.MAX_TEXT`).
    """

    __test__ = False  # not a pytest test class
    __tablename__ = "test_cases"
    __table_args__ = (
        Index("ix_test_cases_key_build", "key", "build_id", "status"),
        Index("ix_test_cases_build_status", "build_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    build_id: Mapped[int] = mapped_column(ForeignKey("builds.id"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    key: Mapped[str] = mapped_column(String(32), default="", server_default="")
    suite: Mapped[str] = mapped_column(Text, default="")
    classname: Mapped[str] = mapped_column(Text, default="", server_default="")
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    flaky: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    file: Mapped[str] = mapped_column(Text, default="", server_default="")
    line: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    trace: Mapped[str] = mapped_column(Text, default="", server_default="")
    output: Mapped[str] = mapped_column(Text, default="", server_default="")


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer, default=0)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("forge", "delivery_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forge: Mapped[str] = mapped_column(String(20))
    delivery_id: Mapped[str] = mapped_column(String(200))
    build_id: Mapped[int | None] = mapped_column(ForeignKey("builds.id"), nullable=True)
    received_at: Mapped[float] = mapped_column(Float)
