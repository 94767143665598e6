"""Findings (events outside instances), SIPP check configuration and results, website
monitors with their checks and maintenance windows, service renewals.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "backup_check",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup_check")),
    )
    with op.batch_alter_table("backup_check", schema=None) as batch_op:
        batch_op.create_index("ix_backup_check_satker_day", ["satker_id", "day"], unique=False)

    op.create_table(
        "finding",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finding")),
    )
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.create_index("ix_finding_satker_time", ["satker_id", "occurred_at"], unique=False)

    op.create_table(
        "monitor",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("expected_status", sa.Integer(), nullable=False),
        sa.Column("keyword", sa.String(length=500), nullable=True),
        sa.Column("keyword_mode", sa.String(length=16), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("freshness_days", sa.Integer(), nullable=True),
        sa.Column("feed_url", sa.String(length=2000), nullable=True),
        sa.Column("check_certificate", sa.Boolean(), nullable=False),
        sa.Column("check_domain", sa.Boolean(), nullable=False),
        sa.Column("is_reference", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("consecutive_successes", sa.Integer(), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("certificate_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("certificate_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("certificate_alerted_days", sa.Integer(), nullable=True),
        sa.Column("domain_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("domain_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("domain_alerted_days", sa.Integer(), nullable=True),
        sa.Column("content_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content_stale_alerted", sa.Boolean(), nullable=False),
        sa.Column("incident_instance_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["satker_id"], ["satker.id"], name=op.f("fk_monitor_satker_id_satker")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor")),
    )
    with op.batch_alter_table("monitor", schema=None) as batch_op:
        batch_op.create_index(
            "ix_monitor_next_check",
            ["next_check_at"],
            unique=False,
            postgresql_where=sa.text("active"),
            sqlite_where=sa.text("active"),
        )
        batch_op.create_index("ix_monitor_satker", ["satker_id"], unique=False)

    op.create_table(
        "renewal",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=200), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("remind_days_before", sa.Integer(), nullable=False),
        sa.Column("reminded_for", sa.Date(), nullable=True),
        sa.Column("reminder_instance_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["satker_id"], ["satker.id"], name=op.f("fk_renewal_satker_id_satker")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renewal")),
    )
    with op.batch_alter_table("renewal", schema=None) as batch_op:
        batch_op.create_index("ix_renewal_due", ["due_date"], unique=False)

    op.create_table(
        "sipp_config",
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["satker_id"], ["satker.id"], name=op.f("fk_sipp_config_satker_id_satker")
        ),
        sa.PrimaryKeyConstraint("satker_id", name=op.f("pk_sipp_config")),
    )
    op.create_table(
        "maintenance_window",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("monitor_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("start_time", sa.Time(), nullable=True),
        sa.Column("end_time", sa.Time(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["monitor.id"], name=op.f("fk_maintenance_window_monitor_id_monitor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_window")),
    )
    op.create_table(
        "monitor_check",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("monitor_id", sa.String(length=36), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("in_maintenance", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["monitor.id"], name=op.f("fk_monitor_check_monitor_id_monitor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_check")),
    )
    with op.batch_alter_table("monitor_check", schema=None) as batch_op:
        batch_op.create_index(
            "ix_monitor_check_monitor_time", ["monitor_id", "checked_at"], unique=False
        )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("event_id", existing_type=BIG_ID, nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("event_id", existing_type=BIG_ID, nullable=False)

    with op.batch_alter_table("monitor_check", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_check_monitor_time")

    op.drop_table("monitor_check")
    op.drop_table("maintenance_window")
    op.drop_table("sipp_config")
    with op.batch_alter_table("renewal", schema=None) as batch_op:
        batch_op.drop_index("ix_renewal_due")

    op.drop_table("renewal")
    with op.batch_alter_table("monitor", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_satker")
        batch_op.drop_index(
            "ix_monitor_next_check",
            postgresql_where=sa.text("active"),
            sqlite_where=sa.text("active"),
        )

    op.drop_table("monitor")
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.drop_index("ix_finding_satker_time")

    op.drop_table("finding")
    with op.batch_alter_table("backup_check", schema=None) as batch_op:
        batch_op.drop_index("ix_backup_check_satker_day")

    op.drop_table("backup_check")
