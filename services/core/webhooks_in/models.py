"""Hook sources, the inbound messages they send, and the SIPP upgrades already started."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import JsonType, UtcDateTime
from services.core.secrets import SealedString


class HookSourceRecord(SQLModel, table=True):
    """A sender allowed to post to `/v1/hooks/{name}` for its target satkers.

    A deleted source keeps its row (with the secret wiped) so its messages stay readable
    and its name, which scopes the webhook-id dedupe, is never given to another sender.
    """

    __tablename__ = "hook_source"

    name: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=32)
    satkers: list[str] = Field(default_factory=list, sa_type=JsonType)
    description: str = Field(default="", max_length=500)
    # Verifying an HMAC needs the key itself, a hash of it would not do: it is encrypted
    # at rest (`services.core.secrets`). The API shows it once, when the source is created.
    secret: str = Field(sa_type=SealedString)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UtcDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class InboundMessageRecord(SQLModel, table=True):
    """A verified message, stored before anything acts on it.

    `(source, message_id)` is unique: a sender's retry of the same webhook-id finds the
    first one and has no further effect.
    """

    __tablename__ = "inbound_message"
    __table_args__ = (
        sa.UniqueConstraint("source", "message_id", name="uq_inbound_message_source_message_id"),
        # The resend cron reads only what is still waiting.
        sa.Index("ix_inbound_message_status_received", "status", "received_at"),
        sa.Index("ix_inbound_message_source_received", "source", "received_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    source: str = Field(foreign_key="hook_source.name", max_length=64)
    message_id: str = Field(max_length=255)
    received_at: datetime = Field(sa_type=UtcDateTime)
    body: dict[str, Any] = Field(default_factory=dict, sa_type=JsonType)
    status: str = Field(max_length=16)
    error: str | None = None
    result: dict[str, Any] | None = Field(default=None, sa_type=JsonType)
    processed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class SippUpgradeRecord(SQLModel, table=True):
    """The SOP 09 instance a SIPP version started in a satker: one per (satker, version),
    however many times and by whichever message the version was announced."""

    __tablename__ = "sipp_upgrade"

    satker_id: str = Field(primary_key=True, foreign_key="satker.id", max_length=64)
    version: str = Field(primary_key=True, max_length=64)
    instance_id: str = Field(foreign_key="instance.id", max_length=36)
    inbound_message_id: str = Field(foreign_key="inbound_message.id", max_length=36)
    created_at: datetime = Field(sa_type=UtcDateTime)
