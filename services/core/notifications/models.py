"""One message for one person on one channel, made from one outbox row."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import BigId, UtcDateTime


class NotificationRecord(SQLModel, table=True):
    """Unique per (outbox row, person, channel): a relay run repeated after a crash, or
    run by two workers, makes each message once."""

    __tablename__ = "notification"
    __table_args__ = (
        sa.UniqueConstraint("outbox_id", "username", "channel"),
        # The sender reads only what waits to be sent.
        sa.Index(
            "ix_notification_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'queued'"),
            sqlite_where=sa.text("status = 'queued'"),
        ),
        sa.Index("ix_notification_person", "username", "id"),
        sa.Index("ix_notification_satker", "satker_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    outbox_id: int = Field(foreign_key="outbox.id", sa_type=BigId)
    satker_id: str = Field(max_length=64)
    username: str = Field(foreign_key="person.username", max_length=64)
    # email | whatsapp | telegram
    channel: str = Field(max_length=16)
    # task_opened, task_assigned, due_soon, overdue, escalated, flagged, backup_failed,
    # monitor_down, monitor_up, certificate_expiring, domain_expiring, renewal_due,
    # review_due
    kind: str = Field(max_length=32)
    event_type: str = Field(max_length=64)
    instance_id: str | None = Field(default=None, max_length=36)
    task_id: str | None = Field(default=None, max_length=36)
    subject: str = Field(max_length=300)
    body: str = Field(sa_type=sa.Text)
    # The address it goes to, as it was when the message was made.
    address: str = Field(max_length=254)
    # Part of the person's daily digest rather than a message of its own.
    digest: bool = False
    # queued (due at next_attempt_at) | sent | failed (retries used up, or refused for
    # good) | skipped (no longer needed: the task was done meanwhile; nothing to send with)
    status: str = Field(default="queued", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, max_length=1000)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
