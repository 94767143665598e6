"""Notifications: the `notification` table (one message per outbox row, person and
channel), `outbox.notified_at` (the notification relay's own progress through the
outbox) and each person's choice of channels (`person.notify_channels`,
`person.notify_digest`).

Rows already in the outbox count as notified: an upgrade does not tell people of what
happened before it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNNOTIFIED = sa.text("notified_at IS NULL")
QUEUED = sa.text("status = 'queued'")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(_time("notified_at", nullable=True))
    op.execute("UPDATE outbox SET notified_at = created_at")
    op.create_index(
        "ix_outbox_unnotified",
        "outbox",
        ["id"],
        postgresql_where=UNNOTIFIED,
        sqlite_where=UNNOTIFIED,
    )
    with op.batch_alter_table("person") as batch:
        batch.add_column(
            sa.Column("notify_channels", JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        batch.add_column(
            sa.Column("notify_digest", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "notification",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("outbox_id", BIG_ID, nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=True),
        sa.Column("task_id", sa.String(length=36), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("next_attempt_at", nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        _time("sent_at", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_notification_outbox_id_outbox")
        ),
        sa.ForeignKeyConstraint(
            ["username"], ["person.username"], name=op.f("fk_notification_username_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
        sa.UniqueConstraint(
            "outbox_id",
            "username",
            "channel",
            name=op.f("uq_notification_outbox_id_username_channel"),
        ),
    )
    op.create_index(
        "ix_notification_due",
        "notification",
        ["next_attempt_at"],
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )
    op.create_index("ix_notification_person", "notification", ["username", "id"])
    op.create_index("ix_notification_satker", "notification", ["satker_id", "id"])


def downgrade() -> None:
    op.drop_table("notification")
    with op.batch_alter_table("person") as batch:
        batch.drop_column("notify_digest")
        batch.drop_column("notify_channels")
    op.drop_index("ix_outbox_unnotified", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("notified_at")
