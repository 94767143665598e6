"""Inbound webhooks: hook sources, inbound messages (deduplicated per source and
webhook-id), and the SOP 09 instance each SIPP version started per satker.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "hook_source",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("satkers", JSON, nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_hook_source")),
    )

    op.create_table(
        "inbound_message",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["source"], ["hook_source.name"], name=op.f("fk_inbound_message_source_hook_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_message")),
        sa.UniqueConstraint(
            "source", "message_id", name=op.f("uq_inbound_message_source_message_id")
        ),
    )
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_message_status_received", ["status", "received_at"], unique=False
        )
        batch_op.create_index(
            "ix_inbound_message_source_received", ["source", "received_at"], unique=False
        )

    op.create_table(
        "sipp_upgrade",
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("inbound_message_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["satker_id"], ["satker.id"], name=op.f("fk_sipp_upgrade_satker_id_satker")
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instance.id"], name=op.f("fk_sipp_upgrade_instance_id_instance")
        ),
        sa.ForeignKeyConstraint(
            ["inbound_message_id"],
            ["inbound_message.id"],
            name=op.f("fk_sipp_upgrade_inbound_message_id_inbound_message"),
        ),
        sa.PrimaryKeyConstraint("satker_id", "version", name=op.f("pk_sipp_upgrade")),
    )


def downgrade() -> None:
    op.drop_table("sipp_upgrade")
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_message_source_received")
        batch_op.drop_index("ix_inbound_message_status_received")
    op.drop_table("inbound_message")
    op.drop_table("hook_source")
