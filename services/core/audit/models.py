"""Audit events and outbox rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from services.core.db import BigId, JsonType, UtcDateTime

# None is stored as SQL NULL, not as the JSON value null.
_JSON_OR_NULL = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class AuditEventRecord(SQLModel, table=True):
    """One change, appended in the transaction that made it; `hash` covers every field
    and the previous event's hash, so an edit or a deletion breaks the chain."""

    __tablename__ = "audit_event"
    __table_args__ = (sa.UniqueConstraint("instance_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    instance_id: str = Field(foreign_key="instance.id", max_length=36)
    seq: int
    type: str = Field(max_length=64)
    actor: str = Field(max_length=200)
    actor_name: str | None = Field(default=None, max_length=200)
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    task_id: str | None = Field(default=None, max_length=36)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JsonType)
    # The role the actor held in someone's stead to do this (see `Actor.acting`); in the
    # hash only when set, so events written before it existed verify as they were.
    acting_for: dict[str, Any] | None = Field(default=None, sa_type=_JSON_OR_NULL)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class OutboxRecord(SQLModel, table=True):
    """An event waiting to be published (webhooks): written with the change itself."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_unpublished", "published_at", "id"),
        # The notification relay reads only the rows it has not looked at.
        sa.Index(
            "ix_outbox_unnotified",
            "id",
            postgresql_where=sa.text("notified_at IS NULL"),
            sqlite_where=sa.text("notified_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    # An instance's audit event, or (None) a finding about something else (a monitor...).
    event_id: int | None = Field(default=None, foreign_key="audit_event.id", sa_type=BigId)
    satker_id: str = Field(max_length=64)
    type: str = Field(max_length=64)
    # The body to publish. None for an instance's audit event: the relay composes it from
    # the event (`services.core.webhooks_out.envelope`), so the event's data is stored once.
    payload: dict[str, Any] | None = Field(default=None, sa_type=JsonType)
    created_at: datetime = Field(sa_type=UtcDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # When the notification relay made the messages of this row (if any): webhooks and
    # notifications read the outbox each at their own pace.
    notified_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class FindingRecord(SQLModel, table=True):
    """Something a worker found outside any instance (a site down, a certificate about
    to expire, a backup that failed): kept, and published through the outbox."""

    __tablename__ = "finding"
    __table_args__ = (sa.Index("ix_finding_satker_time", "satker_id", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    satker_id: str = Field(max_length=64)
    type: str = Field(max_length=64)
    subject: str = Field(max_length=200)
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JsonType)
