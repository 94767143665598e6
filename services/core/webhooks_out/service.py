"""Subscription use cases (create, change, rotate the secret, delete) and redelivery."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.core.errors import Conflict, NotFound
from services.core.webhooks_out import repository
from services.core.webhooks_out.delivery import LEASE
from services.core.webhooks_out.event_types import check_patterns
from services.core.webhooks_out.jobs import DeliveryJob
from services.core.webhooks_out.models import WebhookDeliveryRecord, WebhookSubscriptionRecord
from services.core.webhooks_out.signing import new_secret
from services.core.webhooks_out.targets import check_url

UPDATABLE = frozenset({"url", "event_types", "active", "description"})


class WebhookSubscriptionNotFound(NotFound):
    code = "webhook_subscription_not_found"
    title = "No such webhook subscription"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    title = "No such webhook delivery"


class WebhookSubscriptionInactive(Conflict):
    code = "webhook_subscription_inactive"
    title = "The webhook subscription is not active"


class WebhookAttemptInProgress(Conflict):
    code = "webhook_attempt_in_progress"
    title = "An attempt to deliver this webhook is in progress"


@dataclass(frozen=True)
class Created:
    subscription: WebhookSubscriptionRecord
    secret: str


async def create_subscription(
    session: AsyncSession,
    *,
    satker_id: str,
    url: str,
    event_types: list[str],
    active: bool,
    description: str,
    created_by: str,
    allow_private: bool,
    now: datetime,
) -> Created:
    patterns = check_patterns(event_types)
    await check_url(url, allow_private=allow_private)
    secret = new_secret()
    record = WebhookSubscriptionRecord(
        id=str(uuid.uuid4()),
        satker_id=satker_id,
        url=url,
        event_types=patterns,
        active=active,
        description=description,
        secret=secret,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    await session.flush()
    return Created(record, secret)


async def find_subscription(
    session: AsyncSession, satker_id: str, subscription_id: str
) -> WebhookSubscriptionRecord:
    record = await repository.get_subscription(session, satker_id, subscription_id)
    if record is None:
        raise WebhookSubscriptionNotFound(f"No webhook subscription {subscription_id!r}")
    return record


async def update_subscription(
    session: AsyncSession,
    record: WebhookSubscriptionRecord,
    changes: Mapping[str, Any],
    *,
    allow_private: bool,
    now: datetime,
) -> WebhookSubscriptionRecord:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if "event_types" in changes:
        record.event_types = check_patterns(list(changes["event_types"]))
    if "url" in changes:
        await check_url(changes["url"], allow_private=allow_private)
        record.url = changes["url"]
    if "description" in changes:
        record.description = changes["description"]
    if changes.get("active") and not record.active:
        # Switched back on (after being fixed): the old failure streak no longer counts.
        record.disabled_at = record.disabled_reason = None
        record.failing_since = record.last_failure_at = None
    if "active" in changes:
        record.active = bool(changes["active"])
    record.updated_at = now
    await session.flush()
    return record


async def rotate_secret(
    session: AsyncSession, record: WebhookSubscriptionRecord, *, overlap: timedelta, now: datetime
) -> str:
    """A new secret; the current one keeps signing too for `overlap`. Only one old
    secret is kept: rotating again during an overlap retires the oldest at once."""
    secret = new_secret()
    if overlap > timedelta(0):
        record.previous_secret = record.secret
        record.previous_secret_expires_at = now + overlap
    else:
        record.previous_secret = record.previous_secret_expires_at = None
    record.secret = secret
    record.updated_at = now
    await session.flush()
    return secret


async def delete_subscription(session: AsyncSession, record: WebhookSubscriptionRecord) -> None:
    # Its deliveries and their attempts go with it (ON DELETE CASCADE); a queued job for
    # one of them finds nothing and stops.
    await session.delete(record)
    await session.flush()


async def redeliver(
    session: AsyncSession, satker_id: str, delivery_id: int, *, now: datetime
) -> tuple[WebhookDeliveryRecord, DeliveryJob]:
    """Make an attempt due now. A finished delivery (succeeded, failed, dead) starts the
    retry schedule afresh; a pending one has its next attempt brought forward."""
    found = await repository.get_delivery(session, satker_id, delivery_id)
    if found is None:
        raise WebhookDeliveryNotFound(f"No webhook delivery {delivery_id}")
    delivery, subscription = found
    if not subscription.active:
        raise WebhookSubscriptionInactive(
            f"Subscription {subscription.id} is disabled; activate it before redelivering",
            extra={"subscription_id": subscription.id},
        )
    if delivery.status == "pending":
        latest = await repository.latest_attempt(session, delivery_id)
        if latest is not None and latest.duration_ms is None and latest.attempted_at > now - LEASE:
            raise WebhookAttemptInProgress(f"Attempt {latest.number} is being made right now")
    else:
        delivery.status = "pending"
        delivery.schedule_offset = delivery.attempts
    delivery.next_attempt_at = now
    delivery.updated_at = now
    await session.flush()
    assert delivery.id is not None
    return delivery, DeliveryJob(delivery.id, delivery.attempts + 1)
