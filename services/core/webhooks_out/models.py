"""Webhook subscriptions, their deliveries (one per outbox row and subscription), and
every attempt made to deliver them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import BigId, JsonType, UtcDateTime
from services.core.secrets import SealedString


class WebhookSubscriptionRecord(SQLModel, table=True):
    __tablename__ = "webhook_subscription"
    __table_args__ = (sa.Index("ix_webhook_subscription_satker", "satker_id", "active"),)

    id: str = Field(primary_key=True, max_length=36)
    satker_id: str = Field(foreign_key="satker.id", max_length=64)
    url: str = Field(max_length=2000)
    # Exact types, `prefix.*` or `*` (see `event_types.matches`).
    event_types: list[str] = Field(default_factory=list, sa_type=JsonType)
    active: bool = True
    description: str = Field(default="", max_length=500)
    # Signing needs the key itself, so it is encrypted at rest rather than hashed
    # (`services.core.secrets`). The API shows it once.
    secret: str = Field(sa_type=SealedString)
    # After a rotation the old secret signs too until it expires, so receivers can
    # switch without losing a message.
    previous_secret: str | None = Field(default=None, sa_type=SealedString)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The failure streak: the first failure since the last success, and the latest one.
    failing_since: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_failure_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    disabled_reason: str | None = Field(default=None, max_length=500)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class WebhookDeliveryRecord(SQLModel, table=True):
    """One outbox row for one subscription: unique, so a relay run repeated after a crash
    creates nothing twice."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "outbox_id"),
        # The sweep reads only what waits for an attempt.
        sa.Index(
            "ix_webhook_delivery_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        # The sweep reads only what was attempted before (retries, expired leases),
        # however many first attempts are waiting.
        sa.Index(
            "ix_webhook_delivery_retry",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending' AND attempts > 0"),
            sqlite_where=sa.text("status = 'pending' AND attempts > 0"),
        ),
        sa.Index("ix_webhook_delivery_outbox", "outbox_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    subscription_id: str = Field(
        foreign_key="webhook_subscription.id", max_length=36, ondelete="CASCADE"
    )
    outbox_id: int = Field(foreign_key="outbox.id", sa_type=BigId)
    event_type: str = Field(max_length=64)
    payload: dict[str, Any] = Field(sa_type=JsonType)
    # pending (an attempt is due at next_attempt_at) | succeeded | failed (refused for
    # good: a 4xx, a forbidden target, a disabled subscription) | dead (retries used up)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    # Attempts made before the current retry schedule began (a redelivery restarts it).
    schedule_offset: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class WebhookAttemptRecord(SQLModel, table=True):
    __tablename__ = "webhook_attempt"
    __table_args__ = (sa.Index("ix_webhook_attempt_delivery", "delivery_id", "number"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    delivery_id: int = Field(foreign_key="webhook_delivery.id", sa_type=BigId, ondelete="CASCADE")
    number: int
    attempted_at: datetime = Field(sa_type=UtcDateTime)
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=1000)
    duration_ms: int | None = None
