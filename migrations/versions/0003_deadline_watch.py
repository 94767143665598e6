"""Deadline watch: warn/escalation state and the next check instant, for the sweep.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WATCHED = sa.text("next_check_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("instance") as batch_op:
        batch_op.add_column(sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("task") as batch_op:
        batch_op.add_column(sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("flag", sa.String(), nullable=True))
    # Open work that was started before this migration is watched from its deadlines.
    op.execute(
        "UPDATE task SET next_check_at = COALESCE(warn_at, due_at) "
        "WHERE status = 'open' AND next_check_at IS NULL"
    )
    op.execute(
        "UPDATE instance SET next_check_at = due_at WHERE status = 'active' AND due_at IS NOT NULL"
    )
    op.create_index(
        "ix_instance_next_check",
        "instance",
        ["next_check_at"],
        postgresql_where=WATCHED,
        sqlite_where=WATCHED,
    )
    op.create_index(
        "ix_task_next_check",
        "task",
        ["next_check_at"],
        postgresql_where=WATCHED,
        sqlite_where=WATCHED,
    )


def downgrade() -> None:
    op.drop_index("ix_task_next_check", table_name="task")
    op.drop_index("ix_instance_next_check", table_name="instance")
    with op.batch_alter_table("task") as batch_op:
        batch_op.drop_column("flag")
        batch_op.drop_column("next_check_at")
        batch_op.drop_column("warned_at")
    with op.batch_alter_table("instance") as batch_op:
        batch_op.drop_column("next_check_at")
        batch_op.drop_column("escalation_level")
        batch_op.drop_column("warned_at")
        batch_op.drop_column("warn_at")
