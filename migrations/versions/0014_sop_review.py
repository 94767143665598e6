"""The yearly review of a SOP in a satker (`sop_review`): opened by the worker when due,
completed by the satker's Kasubbag with a decision and the period's performance figures.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
OPEN = sa.text("state = 'open'")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sop_review",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("sop_code", sa.String(length=64), nullable=False),
        sa.Column("sop_version", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        _time("opened_at"),
        sa.Column("state", sa.String(length=16), nullable=False),
        _time("completed_at", nullable=True),
        sa.Column("completed_by", sa.String(length=200), nullable=True),
        sa.Column("completed_by_name", sa.String(length=200), nullable=True),
        sa.Column("acting_for", JSON, nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("performance", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["satker_id"], ["satker.id"], name=op.f("fk_sop_review_satker_id_satker")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sop_review")),
        sa.UniqueConstraint(
            "satker_id", "sop_code", "due_on", name=op.f("uq_sop_review_satker_id_sop_code_due_on")
        ),
    )
    op.create_index(
        "uq_sop_review_open",
        "sop_review",
        ["satker_id", "sop_code"],
        unique=True,
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )
    op.create_index("ix_sop_review_satker", "sop_review", ["satker_id", "due_on"])


def downgrade() -> None:
    op.drop_index("ix_sop_review_satker", table_name="sop_review")
    op.drop_index("uq_sop_review_open", table_name="sop_review")
    op.drop_table("sop_review")
