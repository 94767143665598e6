"""Reading the notification log: who was told what, by which channel, and how it went."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.notifications.kinds import CHANNELS
from services.core.notifications.models import NotificationRecord

__all__ = ["CHANNELS", "STATUSES", "Notification", "counts", "listing"]

STATUSES = ("queued", "sent", "failed", "skipped")
MAX_PAGE = 200

_NOTIFICATION: sa.Table = NotificationRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Notification:
    id: int
    username: str
    satker: str
    channel: str
    kind: str
    event_type: str
    instance_id: str | None
    task_id: str | None
    subject: str
    digest: bool
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime


async def listing(
    session: AsyncSession,
    satkers: Iterable[str],
    *,
    username: str | None = None,
    status: str | None = None,
    channel: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[Notification], int | None]:
    """Newest first: a page of the messages to people of `satkers`, and the id to pass
    as `before` for the next page (None on the last one)."""
    table = _NOTIFICATION
    query = sa.select(table).where(table.c.satker_id.in_(sorted(satkers)))
    if username is not None:
        query = query.where(table.c.username == username)
    if status is not None:
        query = query.where(table.c.status == status)
    if channel is not None:
        query = query.where(table.c.channel == channel)
    if before is not None:
        query = query.where(table.c.id < before)
    limit = max(1, min(limit, MAX_PAGE))
    rows = (await session.execute(query.order_by(table.c.id.desc()).limit(limit + 1))).all()
    items = [
        Notification(
            id=row.id,
            username=row.username,
            satker=row.satker_id,
            channel=row.channel,
            kind=row.kind,
            event_type=row.event_type,
            instance_id=row.instance_id,
            task_id=row.task_id,
            subject=row.subject,
            digest=row.digest,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            sent_at=row.sent_at,
            created_at=row.created_at,
        )
        for row in rows[:limit]
    ]
    return items, (items[-1].id if len(rows) > limit else None)


async def counts(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Messages by (channel, status), for the metrics."""
    rows = await session.execute(
        sa.select(_NOTIFICATION.c.channel, _NOTIFICATION.c.status, sa.func.count()).group_by(
            _NOTIFICATION.c.channel, _NOTIFICATION.c.status
        )
    )
    return {(channel, status): int(count) for channel, status, count in rows.all()}
