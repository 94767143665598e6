"""The outbox relay: committed outbox rows become deliveries, one per matching active
subscription of the row's satker, in the same transaction that marks the rows published.

Only committed rows are visible to the relay, so an event whose transaction rolled back
is never sent. On PostgreSQL the rows are claimed `FOR UPDATE SKIP LOCKED`, so relays in
several workers share the backlog; on SQLite (one writer) the clause is left out. Either
way `(subscription_id, outbox_id)` is unique and inserted `ON CONFLICT DO NOTHING`, so a
relay repeated after a crash never doubles a delivery. Rows are taken in id order; a
transaction that commits late with a lower id is simply relayed on the next run.

The deliveries are due at once; the delivery pump (`pump`) claims and sends them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.audit.models import OutboxRecord
from services.core.webhooks_out import repository
from services.core.webhooks_out.envelope import event_bodies
from services.core.webhooks_out.event_types import matches
from services.core.webhooks_out.jobs import DeliveryJob
from services.core.webhooks_out.models import WebhookDeliveryRecord

BATCH_SIZE = 500
SWEEP_LIMIT = 1000


@dataclass
class RelayReport:
    published: int = 0
    deliveries: int = 0


# Core tables, not ORM entities: a batch is hundreds of rows read and written once.
_OUTBOX: sa.Table = OutboxRecord.__table__  # type: ignore[attr-defined]
_DELIVERY: sa.Table = WebhookDeliveryRecord.__table__  # type: ignore[attr-defined]


def _insert_ignoring_duplicates(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_DELIVERY).on_conflict_do_nothing(index_elements=["subscription_id", "outbox_id"])


async def relay_batch(
    session: AsyncSession, now: datetime, *, batch_size: int = BATCH_SIZE
) -> RelayReport:
    """Publish up to `batch_size` outbox rows as due deliveries; the caller commits."""
    query = (
        sa.select(
            _OUTBOX.c.id, _OUTBOX.c.event_id, _OUTBOX.c.satker_id, _OUTBOX.c.type, _OUTBOX.c.payload
        )
        .where(_OUTBOX.c.published_at.is_(None))
        .order_by(_OUTBOX.c.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.execute(query)).all()
    if not rows:
        return RelayReport()
    subscriptions = await repository.active_subscriptions(session, {r.satker_id for r in rows})
    matched = [
        (row, subscription)
        for row in rows
        for subscription in subscriptions
        if subscription.satker_id == row.satker_id and matches(subscription.event_types, row.type)
    ]
    bodies = await outbox_bodies(session, {row.id: row for row, _ in matched}.values())
    deliveries = [
        {
            "subscription_id": subscription.id,
            "outbox_id": row.id,
            "event_type": row.type,
            "payload": bodies[row.id],
            "status": "pending",
            "attempts": 0,
            "schedule_offset": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for row, subscription in matched
    ]
    if deliveries:
        # Many rows to one statement: SQLAlchemy makes multi-row INSERTs of them, within
        # the backend's limit of parameters.
        await session.execute(_insert_ignoring_duplicates(session), deliveries)
    await session.execute(
        sa.update(_OUTBOX)
        .where(_OUTBOX.c.id.in_([row.id for row in rows]))
        .values(published_at=now)
    )
    return RelayReport(published=len(rows), deliveries=len(deliveries))


async def outbox_bodies(
    session: AsyncSession, rows: Iterable[Any]
) -> dict[int | None, dict[str, Any]]:
    """The body of each outbox row (a record, or a row of its columns), by outbox id: its
    own payload, or (an instance's audit event) composed from the event it refers to,
    which holds the data once."""
    rows = list(rows)
    events = await event_bodies(
        session, [row.event_id for row in rows if row.payload is None and row.event_id]
    )
    bodies: dict[int | None, dict[str, Any]] = {}
    for row in rows:
        body = row.payload if row.payload is not None else events.get(row.event_id or 0)
        if body is None:  # pragma: no cover - a foreign key keeps the event of a row
            raise LookupError(f"outbox row {row.id} has neither a payload nor its event")
        bodies[row.id] = body
    return bodies


async def due_jobs(
    session: AsyncSession, now: datetime, *, retries_only: bool = False
) -> list[DeliveryJob]:
    """The attempts due at `now`: first attempts, retries whose time came, and attempts
    whose worker died (their lease ran out). The sweep asks for `retries_only` (those
    attempted before, read from their own index): first attempts are only the pump's."""
    due = await repository.due_deliveries(
        session, now, limit=SWEEP_LIMIT, retries_only=retries_only
    )
    return [DeliveryJob(delivery_id, attempt) for delivery_id, attempt in due]
