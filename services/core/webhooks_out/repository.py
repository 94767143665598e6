"""Queries on subscriptions, deliveries and attempts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.webhooks_out.models import (
    WebhookAttemptRecord,
    WebhookDeliveryRecord,
    WebhookSubscriptionRecord,
)


async def get_subscription(
    session: AsyncSession, satker_id: str, subscription_id: str
) -> WebhookSubscriptionRecord | None:
    record = await session.get(WebhookSubscriptionRecord, subscription_id)
    # Another satker's subscription is reported exactly like a missing one.
    return record if record is not None and record.satker_id == satker_id else None


async def list_subscriptions(
    session: AsyncSession, satker_id: str
) -> Sequence[WebhookSubscriptionRecord]:
    query = (
        select(WebhookSubscriptionRecord)
        .where(col(WebhookSubscriptionRecord.satker_id) == satker_id)
        .order_by(col(WebhookSubscriptionRecord.created_at), col(WebhookSubscriptionRecord.id))
    )
    return (await session.scalars(query)).all()


async def active_subscriptions(
    session: AsyncSession, satker_ids: Iterable[str]
) -> Sequence[WebhookSubscriptionRecord]:
    query = (
        select(WebhookSubscriptionRecord)
        .where(col(WebhookSubscriptionRecord.satker_id).in_(sorted(set(satker_ids))))
        .where(col(WebhookSubscriptionRecord.active))
        .order_by(col(WebhookSubscriptionRecord.id))
    )
    return (await session.scalars(query)).all()


async def get_delivery(
    session: AsyncSession, satker_id: str, delivery_id: int
) -> tuple[WebhookDeliveryRecord, WebhookSubscriptionRecord] | None:
    query = (
        select(WebhookDeliveryRecord, WebhookSubscriptionRecord)
        .join(
            WebhookSubscriptionRecord,
            col(WebhookSubscriptionRecord.id) == col(WebhookDeliveryRecord.subscription_id),
        )
        .where(col(WebhookDeliveryRecord.id) == delivery_id)
        .where(col(WebhookSubscriptionRecord.satker_id) == satker_id)
    )
    row = (await session.execute(query)).first()
    return None if row is None else (row[0], row[1])


async def list_deliveries(
    session: AsyncSession,
    satker_id: str,
    *,
    subscription_id: str | None,
    status: str | None,
    event_type: str | None,
    before_id: int | None,
    limit: int,
) -> Sequence[WebhookDeliveryRecord]:
    query = (
        select(WebhookDeliveryRecord)
        .join(
            WebhookSubscriptionRecord,
            col(WebhookSubscriptionRecord.id) == col(WebhookDeliveryRecord.subscription_id),
        )
        .where(col(WebhookSubscriptionRecord.satker_id) == satker_id)
        .order_by(col(WebhookDeliveryRecord.id).desc())
        .limit(limit)
    )
    if subscription_id is not None:
        query = query.where(col(WebhookDeliveryRecord.subscription_id) == subscription_id)
    if status is not None:
        query = query.where(col(WebhookDeliveryRecord.status) == status)
    if event_type is not None:
        query = query.where(col(WebhookDeliveryRecord.event_type) == event_type)
    if before_id is not None:
        query = query.where(col(WebhookDeliveryRecord.id) < before_id)
    return (await session.scalars(query)).all()


async def attempts_of(
    session: AsyncSession, delivery_ids: Sequence[int]
) -> dict[int, list[WebhookAttemptRecord]]:
    found: dict[int, list[WebhookAttemptRecord]] = defaultdict(list)
    if not delivery_ids:
        return found
    query = (
        select(WebhookAttemptRecord)
        .where(col(WebhookAttemptRecord.delivery_id).in_(list(delivery_ids)))
        .order_by(col(WebhookAttemptRecord.delivery_id), col(WebhookAttemptRecord.number))
    )
    for attempt in (await session.scalars(query)).all():
        found[attempt.delivery_id].append(attempt)
    return found


async def latest_attempt(session: AsyncSession, delivery_id: int) -> WebhookAttemptRecord | None:
    query = (
        select(WebhookAttemptRecord)
        .where(col(WebhookAttemptRecord.delivery_id) == delivery_id)
        .order_by(col(WebhookAttemptRecord.number).desc())
        .limit(1)
    )
    return (await session.scalars(query)).first()


async def due_deliveries(
    session: AsyncSession, now: datetime, *, limit: int, retries_only: bool = False
) -> Sequence[tuple[int, int]]:
    """(delivery id, its next attempt number) of the pending deliveries now due; with
    `retries_only`, of those attempted before (retries, expired leases, redeliveries)."""
    query = (
        select(col(WebhookDeliveryRecord.id), col(WebhookDeliveryRecord.attempts))
        .where(col(WebhookDeliveryRecord.status) == "pending")
        .where(col(WebhookDeliveryRecord.next_attempt_at) <= now)
        .order_by(col(WebhookDeliveryRecord.next_attempt_at))
        .limit(limit)
    )
    if retries_only:
        query = query.where(col(WebhookDeliveryRecord.attempts) > 0)
    rows = (await session.execute(query)).all()
    return [(delivery_id, attempts + 1) for delivery_id, attempts in rows if delivery_id]
