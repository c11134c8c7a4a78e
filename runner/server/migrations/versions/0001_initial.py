"""The first schema: builds, jobs, steps, test cases, artifacts, deliveries.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "builds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("forge", sa.String(20), nullable=False),
        sa.Column("repo", sa.String(200), nullable=False),
        sa.Column("repo_url", sa.Text, nullable=False),
        sa.Column("ref", sa.String(250), nullable=False),
        sa.Column("branch", sa.String(250), nullable=False),
        sa.Column("tag", sa.String(250), nullable=False),
        sa.Column("sha", sa.String(64), nullable=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_index("ix_builds_repo_branch", "builds", ["repo", "branch"])
    op.create_index("ix_builds_status", "builds", ["status"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("build_id", sa.Integer, sa.ForeignKey("builds.id"), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("needs", sa.JSON, nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("condition", sa.Boolean, nullable=False),
        sa.Column("allow_failure", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("enqueued", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(250), nullable=False),
        sa.Column("lease_token", sa.String(64), nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("tests", sa.JSON, nullable=False),
        sa.Column("phases", sa.JSON, nullable=False),
        sa.UniqueConstraint("build_id", "name"),
    )
    op.create_index("ix_jobs_build_id", "jobs", ["build_id"])
    op.create_table(
        "steps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("index", sa.Integer, nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.UniqueConstraint("job_id", "index"),
    )
    op.create_index("ix_steps_job_id", "steps", ["job_id"])
    op.create_table(
        "test_cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("build_id", sa.Integer, sa.ForeignKey("builds.id"), nullable=False),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("suite", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_test_cases_build_id", "test_cases", ["build_id"])
    op.create_index("ix_test_cases_job_id", "test_cases", ["job_id"])
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.UniqueConstraint("job_id", "path"),
    )
    op.create_index("ix_artifacts_job_id", "artifacts", ["job_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("forge", sa.String(20), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("build_id", sa.Integer, sa.ForeignKey("builds.id"), nullable=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.UniqueConstraint("forge", "delivery_id"),
    )


def downgrade() -> None:
    for table in ("deliveries", "artifacts", "test_cases", "steps", "jobs", "builds"):
        op.drop_table(table)
