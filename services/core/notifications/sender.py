"""Sending what is due: claim a batch, send each message, record the outcome.

A claim (its own short transaction) counts the attempt and moves `next_attempt_at` a
lease ahead, so a worker that dies mid-send leaves its messages to be taken again once
the lease ran out; on PostgreSQL `FOR UPDATE SKIP LOCKED` shares the due messages among
workers. A message about a task that is no longer open is not sent (`skipped`). A
person's due digest items go as one message per channel. Failures are retried by
`ALUR_NOTIFY__RETRY_SCHEDULE`, then `failed` with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.instances.models import TaskRecord
from services.core.notifications import channels, texts
from services.core.notifications.kinds import TASK_KINDS
from services.core.notifications.models import NotificationRecord
from services.core.settings import NotifySettings

log = structlog.get_logger(__name__)

BATCH_SIZE = 100
# A claimed message not recorded within this long is taken again (its worker died).
LEASE = timedelta(minutes=2)

_NOTIFICATION: sa.Table = NotificationRecord.__table__  # type: ignore[attr-defined]
_TASKS: sa.Table = TaskRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claimed:
    ids: tuple[int, ...]  # several for a digest
    channel: str
    kind: str
    username: str
    address: str
    message: texts.Message
    attempts: int


async def claim(session: AsyncSession, now: datetime, *, limit: int = BATCH_SIZE) -> list[Any]:
    """Take up to `limit` due messages: their attempt counted, their lease started. Those
    about a task that is no longer open are marked skipped instead."""
    rows = (
        await session.execute(
            sa.select(_NOTIFICATION)
            .where(_NOTIFICATION.c.status == "queued", _NOTIFICATION.c.next_attempt_at <= now)
            .order_by(_NOTIFICATION.c.next_attempt_at, _NOTIFICATION.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return []
    task_ids = {row.task_id for row in rows if row.task_id and row.kind in TASK_KINDS}
    closed = set()
    if task_ids:
        closed = set(
            (
                await session.execute(
                    sa.select(_TASKS.c.id).where(
                        _TASKS.c.id.in_(sorted(task_ids)), _TASKS.c.status != "open"
                    )
                )
            ).scalars()
        )
    quiet = [row.id for row in rows if row.task_id in closed and row.kind in TASK_KINDS]
    if quiet:
        await session.execute(
            sa.update(_NOTIFICATION)
            .where(_NOTIFICATION.c.id.in_(quiet))
            .values(status="skipped", last_error="the task was done meanwhile", updated_at=now)
        )
    taken = [row for row in rows if row.id not in set(quiet)]
    if taken:
        await session.execute(
            sa.update(_NOTIFICATION)
            .where(_NOTIFICATION.c.id.in_([row.id for row in taken]))
            .values(
                attempts=_NOTIFICATION.c.attempts + 1,
                next_attempt_at=now + LEASE,
                updated_at=now,
            )
        )
    return taken


def group(rows: Sequence[Any], now: datetime) -> list[Claimed]:
    """One send per message; digest items of one person and channel as one."""
    sends: list[Claimed] = []
    digests: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        if row.digest:
            digests[(row.username, row.channel)].append(row)
            continue
        sends.append(
            Claimed(
                (row.id,),
                row.channel,
                row.kind,
                row.username,
                row.address,
                texts.Message(row.subject, row.body),
                row.attempts + 1,
            )
        )
    for (username, channel), items in digests.items():
        first = items[0]
        message = texts.digest_message(
            [(item.subject, item.body) for item in items], day=texts.local_date(str(now.date()))
        )
        sends.append(
            Claimed(
                tuple(item.id for item in items),
                channel,
                first.kind,
                username,
                first.address,
                message,
                max(item.attempts for item in items) + 1,
            )
        )
    return sends


async def send(settings: NotifySettings, claimed: Claimed) -> channels.Outcome:
    try:
        if claimed.channel == "email":
            return await channels.send_email(settings, claimed.address, claimed.message)
        return await channels.send_chat(settings, claimed.channel, claimed.address, claimed.message)
    except channels.NotConfigured as exc:
        # Development, or a channel the court does not use: say what would have gone.
        log.info(
            "notification not sent: channel not configured",
            channel=claimed.channel,
            person=claimed.username,
            kind=claimed.kind,
            subject=claimed.message.subject,
            reason=str(exc),
        )
        return channels.Outcome(False, str(exc), permanent=True, skipped=True)


def _next_state(
    settings: NotifySettings, outcome: channels.Outcome, attempts: int, now: datetime
) -> dict[str, Any]:
    if outcome.sent:
        return {"status": "sent", "sent_at": now, "next_attempt_at": None, "last_error": None}
    if outcome.skipped:
        return {"status": "skipped", "next_attempt_at": None, "last_error": outcome.error}
    schedule = settings.retry_schedule
    if outcome.permanent or attempts >= len(schedule):
        return {"status": "failed", "next_attempt_at": None, "last_error": outcome.error}
    return {
        "status": "queued",
        "next_attempt_at": now + timedelta(seconds=schedule[attempts]),
        "last_error": outcome.error,
    }


async def record(
    session: AsyncSession,
    settings: NotifySettings,
    claimed: Claimed,
    outcome: channels.Outcome,
    now: datetime,
) -> str:
    """Record how a send went; returns the messages' new status."""
    state = _next_state(settings, outcome, claimed.attempts, now)
    await session.execute(
        sa.update(_NOTIFICATION)
        .where(_NOTIFICATION.c.id.in_(claimed.ids))
        .values(**state, updated_at=now)
    )
    log.info(
        "notification",
        channel=claimed.channel,
        person=claimed.username,
        kind=claimed.kind,
        messages=len(claimed.ids),
        status=state["status"],
        error=outcome.error,
    )
    return str(state["status"])
