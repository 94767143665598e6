"""Job shells of the outbound webhooks: the outbox relay and delivery sweep (cron jobs)
and one delivery attempt (a queued job, `delivery:{id}:{attempt}`)."""

from __future__ import annotations

from typing import Any

import structlog
from arq import Retry
from sqlalchemy.exc import SQLAlchemyError

from services.core.db import unit_of_work, utcnow
from services.core.webhooks import delivery, relay
from services.core.webhooks.jobs import enqueue_deliveries
from services.worker.context import of

log = structlog.get_logger(__name__)

# A relay run keeps going while batches come back full, up to this many.
MAX_BATCHES_PER_RUN = 20
DATABASE_RETRY_SECONDS = 10


async def relay_outbox(ctx: dict[str, Any]) -> int:
    """Turn committed outbox rows into deliveries; returns the rows published."""
    context = of(ctx)
    published = 0
    for _ in range(MAX_BATCHES_PER_RUN):
        async with unit_of_work(context.sessions) as session:
            report = await relay.relay_batch(session, utcnow())
        # Committed: the attempts may go. A lost message is found by the sweep.
        await enqueue_deliveries(ctx["redis"], report.jobs)
        published += report.published
        if report.published < relay.BATCH_SIZE:
            break
    if published:
        log.info("outbox relayed", rows=published)
    return published


async def sweep_webhook_deliveries(ctx: dict[str, Any]) -> int:
    """Queue the attempts now due: scheduled retries, lost jobs, attempts whose worker
    died. The deterministic job ids keep an attempt already queued from doubling."""
    context = of(ctx)
    async with unit_of_work(context.sessions) as session:
        jobs = await relay.due_jobs(session, utcnow())
    return await enqueue_deliveries(ctx["redis"], jobs)


async def deliver_webhook(ctx: dict[str, Any], delivery_id: int, attempt: int) -> str:
    context = of(ctx)
    settings = context.settings.webhooks
    try:
        async with unit_of_work(context.sessions) as session:
            claimed = await delivery.claim(session, delivery_id, attempt, settings, utcnow())
    except (SQLAlchemyError, OSError) as exc:
        # Nothing was sent or counted: the same job may simply run again.
        log.warning("delivery not claimed; retrying", delivery=delivery_id, error=str(exc))
        raise Retry(defer=DATABASE_RETRY_SECONDS) from exc
    if claimed is None:
        return "skipped"
    outcome = await delivery.send(context.http, claimed, settings)
    async with unit_of_work(context.sessions) as session:
        state = await delivery.record(session, claimed, outcome, settings, utcnow())
    log.info(
        "webhook delivery attempt",
        delivery=delivery_id,
        attempt=attempt,
        status_code=outcome.status_code,
        error=outcome.error,
        state=state,
    )
    return state
