"""Builds remember the last final status the forge was sent, so that a lost one is sent again.

The worker that settles a build reports its status right after the commit; killed in between, the
forge never heard. ``status_reported`` is what the forge last got: the server's recovery loop sends
each finished build whose ``status_reported`` differs from its ``status``. Builds finished before
this revision are taken as reported (their history is not sent again). The partial index holds only
the builds still to report, keyed by when they finished, so that the sweep never scans the history.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UNREPORTED = "status_reported <> status"


def upgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("status_reported", sa.String(20), nullable=False, server_default=""))
    builds = sa.table(
        "builds",
        sa.column("status", sa.String),
        sa.column("status_reported", sa.String),
        sa.column("finished_at", sa.Float),
    )
    op.get_bind().execute(
        sa.update(builds).where(builds.c.finished_at.is_not(None)).values(status_reported=builds.c.status)
    )
    op.create_index(
        "ix_builds_unreported",
        "builds",
        ["finished_at"],
        sqlite_where=sa.text(UNREPORTED),
        postgresql_where=sa.text(UNREPORTED),
    )


def downgrade() -> None:
    op.drop_index("ix_builds_unreported", "builds")
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("status_reported")
