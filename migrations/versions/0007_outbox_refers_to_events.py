"""An instance event's outbox row refers to its event instead of copying it (`payload`
may be NULL: the relay composes the body from the event), and instance rows leave room
on their pages for updates in place.

`instance` is rewritten by every transition and every deadline notice, never in an
indexed column but for its status and next check: with free room on the page PostgreSQL
updates the row in place (a HOT update) without a new entry in each of its indexes.
The fill factor applies to pages written from now on; `VACUUM FULL instance` (which
locks the table) applies it to existing ones.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from collections.abc import Sequence
from datetime import UTC

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
INSTANCE_FILLFACTOR = 85


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("payload", existing_type=JSON, nullable=True)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE instance SET (fillfactor = {INSTANCE_FILLFACTOR})")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE instance RESET (fillfactor)")
    # Rows still waiting get the body they would have been published with.
    outbox = sa.table("outbox", sa.column("id"), sa.column("event_id"), sa.column("payload", JSON))
    event = sa.table(
        "audit_event",
        *(sa.column(name) for name in ("id", "instance_id", "type", "task_id", "actor")),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("data", JSON),
    )
    instance = sa.table("instance", sa.column("id"), sa.column("satker_id"), sa.column("sop_code"))
    waiting = bind.execute(
        sa.select(outbox.c.id.label("outbox_id"), event, instance.c.satker_id, instance.c.sop_code)
        .join(event, event.c.id == outbox.c.event_id)
        .join(instance, instance.c.id == event.c.instance_id)
        # SQL NULL, or JSON null as a bare None is stored through SQLAlchemy.
        .where(sa.or_(outbox.c.payload.is_(None), sa.cast(outbox.c.payload, sa.Text) == "null"))
    ).mappings()
    for row in list(waiting):
        occurred_at = row["occurred_at"]
        if occurred_at.tzinfo is None:  # SQLite keeps UTC without an offset
            occurred_at = occurred_at.replace(tzinfo=UTC)
        body = {
            "id": f"evt_{row['id']}",
            "type": row["type"],
            "occurred_at": occurred_at.astimezone(UTC).isoformat(),
            "satker": row["satker_id"],
            "instance_id": row["instance_id"],
            "sop": row["sop_code"],
            "task_id": row["task_id"],
            "actor": row["actor"],
            "data": row["data"],
        }
        bind.execute(sa.update(outbox).where(outbox.c.id == row["outbox_id"]).values(payload=body))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("payload", existing_type=JSON, nullable=False)
