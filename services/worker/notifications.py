"""Job shells of the notifications: the relay (outbox rows -> messages) and the sender
(messages due -> e-mail and chat), both cron jobs that keep going while there is work.
In one process one of each runs at a time; across processes they share the rows."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import structlog

from services.core.db import utcnow
from services.core.notifications import relay, sender
from services.worker.context import of, unit

log = structlog.get_logger(__name__)

# A run keeps going while work comes, up to this long (well under the job timeout).
RUN_SECONDS = 60.0
# Messages sent at once by one worker process (a group's outcomes are recorded together).
SEND_AT_ONCE = 8


async def relay_notifications(ctx: dict[str, Any], *, now: datetime | None = None) -> int:
    """Make the messages of committed outbox rows; returns the messages made. (`now`:
    the clock, given by tests; the cron runs on the real one.)"""
    context = of(ctx)
    if context.notifying.locked():
        return 0
    made = 0
    async with context.notifying:
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            async with unit(ctx) as work:
                report = await relay.relay_batch(
                    work.session, context.services, context.settings.notify, now or utcnow()
                )
            made += report.messages
            if report.rows < relay.BATCH_SIZE:
                break
    if made:
        log.info("notifications made", messages=made)
    return made


async def send_notifications(ctx: dict[str, Any], *, now: datetime | None = None) -> dict[str, int]:
    """Send the messages now due, a batch at a time; returns counts by channel:status.
    `SEND_AT_ONCE` messages go at once (chat ones one after another: Apprise's log
    capture is per process), each group's outcomes recorded in one transaction."""
    context = of(ctx)
    outcomes: dict[str, int] = {}
    if context.sending.locked():
        return outcomes
    settings = context.settings.notify
    async with context.sending:
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            async with unit(ctx) as work:
                rows = await sender.claim(work.session, now or utcnow())
            sends = sender.group(rows, now or utcnow())
            for start in range(0, len(sends), SEND_AT_ONCE):
                chunk = sends[start : start + SEND_AT_ONCE]
                results = await asyncio.gather(*(sender.send(settings, c) for c in chunk))
                async with unit(ctx) as work:
                    for claimed, outcome in zip(chunk, results, strict=True):
                        status = await sender.record(
                            work.session, settings, claimed, outcome, now or utcnow()
                        )
                        key = f"{claimed.channel}:{status}"
                        outcomes[key] = outcomes.get(key, 0) + len(claimed.ids)
            if len(rows) < sender.BATCH_SIZE:
                break
    return outcomes
