"""Test cases keep what the tests page shows: trace, output, class name, file and line, flaky, and a key.

``key`` names a case across builds (job, suite and name, digested); existing rows get theirs here, so
the history of builds made before this revision lines up with the new ones. The digest is spelled
out in this file rather than imported: a migration must keep doing what it did when it was written.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BATCH = 1000


def _key(job: str, suite: str, name: str) -> str:
    return hashlib.sha1(f"{job}\x1f{suite}\x1f{name}".encode(errors="replace")).hexdigest()[:32]


def upgrade() -> None:
    with op.batch_alter_table("test_cases") as batch:
        batch.add_column(sa.Column("key", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("classname", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("flaky", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("file", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("line", sa.Integer, nullable=True))
        batch.add_column(sa.Column("trace", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("output", sa.Text, nullable=False, server_default=""))
    op.create_index("ix_test_cases_key_build", "test_cases", ["key", "build_id", "status"])
    op.create_index("ix_test_cases_build_status", "test_cases", ["build_id", "status"])

    bind = op.get_bind()
    cases = sa.table("test_cases", sa.column("id", sa.Integer), sa.column("key", sa.String))
    rows = bind.execute(
        sa.text(
            "SELECT test_cases.id, jobs.name, test_cases.suite, test_cases.name, test_cases.status "
            "FROM test_cases JOIN jobs ON jobs.id = test_cases.job_id ORDER BY test_cases.id"
        )
    ).all()
    update = (
        sa.update(cases).where(cases.c.id == sa.bindparam("case_id")).values(key=sa.bindparam("case_key"))
    )
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        bind.execute(update, [{"case_id": r[0], "case_key": _key(r[1], r[2], r[3])} for r in chunk])
    flaky = sa.table("test_cases", sa.column("status", sa.String), sa.column("flaky", sa.Boolean))
    bind.execute(sa.update(flaky).where(flaky.c.status == "flaky").values(flaky=True))


def downgrade() -> None:
    op.drop_index("ix_test_cases_build_status", "test_cases")
    op.drop_index("ix_test_cases_key_build", "test_cases")
    with op.batch_alter_table("test_cases") as batch:
        for column in ("output", "trace", "line", "file", "flaky", "classname", "key"):
            batch.drop_column(column)
