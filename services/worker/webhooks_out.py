"""Job shells of the outbound webhooks: the outbox relay, the delivery pump and the
delivery sweep (cron jobs), and one given attempt (a queued job, `delivery:{id}:{n}`: a
redelivery, or what the sweep found).

The relay and the pump run every second and keep going while there is work; in one
process one of each runs at a time (a run that finds one going returns at once), across
processes they share the rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import structlog
from arq import Retry
from sqlalchemy.exc import SQLAlchemyError

from services.core.db import utcnow
from services.core.webhooks_out import delivery, pump, relay
from services.worker.context import of, unit

log = structlog.get_logger(__name__)

# A relay run keeps going while rows come, up to this long (well under the job timeout).
RELAY_RUN_SECONDS = 60.0
# After a batch that was not full, the relay lets rows gather this long.
RELAY_PAUSE_SECONDS = 0.05
DATABASE_RETRY_SECONDS = 10
# The pump makes what is due within a second or so; the sweep queues what waited longer
# (no pump ran: a lost tick, a stuck worker), so the two seldom ask for one attempt.
SWEEP_GRACE = timedelta(seconds=3)


async def relay_outbox(ctx: dict[str, Any]) -> int:
    """Turn committed outbox rows into deliveries; returns the rows published."""
    context = of(ctx)
    if context.relaying.locked():
        return 0
    published = 0
    async with context.relaying:
        deadline = time.monotonic() + RELAY_RUN_SECONDS
        while True:
            async with unit(ctx) as work:
                report = await relay.relay_batch(work.session, utcnow())
            published += report.published
            if report.deliveries:
                context.deliveries_waiting.set()  # committed: the pump may claim them
            if not report.published or time.monotonic() > deadline:
                break
            if report.published < relay.BATCH_SIZE:
                await asyncio.sleep(RELAY_PAUSE_SECONDS)
    if published:
        log.info("outbox relayed", rows=published)
    return published


async def deliver_webhooks(ctx: dict[str, Any]) -> int:
    """Make the attempts now due, in batches; returns how many were made."""
    context = of(ctx)
    if context.pumping.locked():
        return 0
    async with context.pumping:
        report = await pump.run(
            context.sessions,
            context.webhooks_http,
            context.settings.webhooks,
            concurrency=context.settings.webhooks.concurrency,
            wake=context.deliveries_waiting,
        )
    if report.attempts:
        log.info("webhook deliveries attempted", attempts=report.attempts, **report.states)
    return report.attempts


async def sweep_webhook_deliveries(ctx: dict[str, Any]) -> int:
    """Queue, one job each, the retries and expired leases that no pump took although
    due for `SWEEP_GRACE` (read from their own index, whatever the backlog of first
    attempts). The deterministic job ids keep an attempt already queued from doubling;
    a pump and a job asking for the same attempt cannot both make it."""
    async with unit(ctx) as work:
        jobs = await relay.due_jobs(work.session, utcnow() - SWEEP_GRACE, retries_only=True)
        work.send(*jobs)
    return work.queued


async def deliver_webhook(ctx: dict[str, Any], delivery_id: int, attempt: int) -> str:
    context = of(ctx)
    settings = context.settings.webhooks
    try:
        async with unit(ctx) as work:
            claimed = await delivery.claim(work.session, delivery_id, attempt, settings, utcnow())
    except (SQLAlchemyError, OSError) as exc:
        # Nothing was sent or counted: the same job may simply run again.
        log.warning("delivery not claimed; retrying", delivery=delivery_id, error=str(exc))
        raise Retry(defer=DATABASE_RETRY_SECONDS) from exc
    if claimed is None:
        return "skipped"
    outcome = await delivery.send(context.webhooks_http, claimed, settings)
    async with unit(ctx) as work:
        state = await delivery.record(work.session, claimed, outcome, settings, utcnow())
    log.info(
        "webhook delivery attempt",
        delivery=delivery_id,
        attempt=attempt,
        status_code=outcome.status_code,
        error=outcome.error,
        state=state,
    )
    return state
