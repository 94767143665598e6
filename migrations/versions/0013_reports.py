"""Reports: corrective actions on a SOP for a period (`sop_follow_up`), report jobs built
by a worker (`report_job`), and the index the reports read tasks by (a satker's tasks in
order of opening).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sop_follow_up",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("sop_code", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=True),
        _time("created_at"),
        sa.ForeignKeyConstraint(
            ["satker_id"], ["satker.id"], name=op.f("fk_sop_follow_up_satker_id_satker")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sop_follow_up")),
    )
    op.create_index("ix_sop_follow_up_period", "sop_follow_up", ["satker_id", "period", "sop_code"])
    op.create_table(
        "report_job",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        _time("created_at"),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["satker_id"], ["satker.id"], name=op.f("fk_report_job_satker_id_satker")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_job")),
    )
    op.create_index("ix_report_job_satker", "report_job", ["satker_id", "created_at"])
    op.create_index("ix_task_satker_opened", "task", ["satker_id", "opened_at"])


def downgrade() -> None:
    op.drop_index("ix_task_satker_opened", table_name="task")
    op.drop_table("report_job")
    op.drop_table("sop_follow_up")
