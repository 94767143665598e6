"""Job shells of inbound webhooks: process a stored message; resend the ones left waiting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from arq import Retry

from services.core.availability import database_unavailable
from services.core.db import unit_of_work, utcnow
from services.core.hooks import processing
from services.core.hooks import service as hooks
from services.core.hooks.jobs import enqueue_messages
from services.core.instances.jobs import enqueue_jobs
from services.worker.context import of
from services.worker.tasks import backoff_seconds

log = structlog.get_logger(__name__)

# The API enqueues a message as soon as it is stored; one still waiting after this was
# lost on the way (Redis down, a worker killed) and is sent again.
WAITING_AFTER = timedelta(minutes=1)


async def process_inbound_message(ctx: dict[str, Any], message_id: str) -> str:
    context = of(ctx)
    job_try = int(ctx.get("job_try", 1))
    try:
        async with unit_of_work(context.sessions) as session:
            handled = await processing.process_message(
                session, context.services, message_id, utcnow()
            )
    except Exception as exc:
        if database_unavailable(exc):
            raise  # an outage, not a failure of the message: retried, never given up for it
        if job_try < context.settings.worker.max_tries:
            log.warning("inbound message failed; retrying", message=message_id, error=str(exc))
            raise Retry(defer=backoff_seconds(job_try)) from exc
        error = f"processing failed {job_try} times; last error: {type(exc).__name__}: {exc}"
        async with unit_of_work(context.sessions) as session:
            await processing.give_up(session, message_id, error, utcnow())
        log.error("inbound message failed for good", message=message_id, error=error)
        return "failed"
    if handled is None:
        return "nothing to do"
    # Automated steps the message opened run once the message's changes are committed.
    await enqueue_jobs(ctx["redis"], handled.jobs)
    log.info("inbound message", message=message_id, status=handled.status.value)
    return handled.status.value


async def resend_waiting_messages(ctx: dict[str, Any]) -> int:
    context = of(ctx)
    async with unit_of_work(context.sessions) as session:
        waiting = await hooks.waiting_message_ids(session, received_before=utcnow() - WAITING_AFTER)
    # Same job ids as the API's: a message whose job is still queued is not doubled.
    await enqueue_messages(ctx["redis"], waiting)
    return len(waiting)
