"""Instances, tasks, audit events, outbox, idempotency keys, satkers and calendar overrides.

Seeds the satker tree of the Bengkulu high court.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SEED_SATKERS = [
    ("pt-bengkulu", "Pengadilan Tinggi Bengkulu", None, "pt"),
    ("pn-tais", "Pengadilan Negeri Tais", "pt-bengkulu", None),
    ("pn-bengkulu", "Pengadilan Negeri Bengkulu", "pt-bengkulu", None),
    ("pn-manna", "Pengadilan Negeri Manna", "pt-bengkulu", None),
]


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("satker_id", "principal", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_table(
        "satker",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("lane_role", sa.String(length=64), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["satker.id"], name=op.f("fk_satker_parent_id_satker")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_satker")),
    )
    satker = sa.table(
        "satker",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("parent_id", sa.String),
        sa.column("lane_role", sa.String),
        sa.column("timezone", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        satker,
        [
            {
                "id": id_,
                "name": name,
                "parent_id": parent,
                "lane_role": lane_role,
                "timezone": "Asia/Jakarta",
                "created_at": datetime(2026, 1, 1, tzinfo=UTC),
            }
            for id_, name, parent, lane_role in SEED_SATKERS
        ],
    )
    op.create_table(
        "calendar_override",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("hours", JSON, nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["satker_id"], ["satker.id"], name=op.f("fk_calendar_override_satker_id_satker")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_override")),
    )
    op.create_index("ix_calendar_override_satker", "calendar_override", ["satker_id", "start_date"])

    op.create_table(
        "instance",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("sop_code", sa.String(length=64), nullable=False),
        sa.Column("sop_version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("context", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["satker_id"], ["satker.id"], name=op.f("fk_instance_satker_id_satker")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance")),
    )
    op.create_index("ix_instance_satker_started", "instance", ["satker_id", "started_at", "id"])
    op.create_index("ix_instance_sop_status", "instance", ["sop_code", "status"])

    op.create_table(
        "audit_event",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instance.id"], name=op.f("fk_audit_event_instance_id_instance")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
        sa.UniqueConstraint("instance_id", "seq", name=op.f("uq_audit_event_instance_id_seq")),
    )
    op.create_table(
        "task",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("sop_code", sa.String(length=64), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("lane", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instance.id"], name=op.f("fk_task_instance_id_instance")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
    )
    op.create_index("ix_task_inbox", "task", ["satker_id", "lane", "status"])
    op.create_index("ix_task_instance", "task", ["instance_id"])
    op.create_index("ix_task_open_due", "task", ["status", "due_at"])

    op.create_table(
        "outbox",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("event_id", BIG_ID, nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["audit_event.id"], name=op.f("fk_outbox_event_id_audit_event")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_unpublished", table_name="outbox")

    op.drop_table("outbox")
    op.drop_index("ix_task_open_due", table_name="task")
    op.drop_index("ix_task_instance", table_name="task")
    op.drop_index("ix_task_inbox", table_name="task")

    op.drop_table("task")
    op.drop_table("audit_event")
    op.drop_index("ix_instance_sop_status", table_name="instance")
    op.drop_index("ix_instance_satker_started", table_name="instance")

    op.drop_table("instance")
    op.drop_index("ix_calendar_override_satker", table_name="calendar_override")

    op.drop_table("calendar_override")
    op.drop_table("satker")
    op.drop_table("idempotency_key")
