"""Job shells of inbound webhooks: process a stored message; resend the ones left waiting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from arq import Retry

from services.core.availability import database_unavailable
from services.core.db import utcnow
from services.core.webhooks_in import processing
from services.core.webhooks_in import service as hooks
from services.core.webhooks_in.jobs import InboundMessageJob
from services.worker.context import of, unit
from services.worker.tasks import backoff_seconds

log = structlog.get_logger(__name__)

# The API enqueues a message as soon as it is stored; one still waiting after this was
# lost on the way (Redis down, a worker killed) and is sent again.
WAITING_AFTER = timedelta(minutes=1)


async def process_inbound_message(ctx: dict[str, Any], message_id: str) -> str:
    context = of(ctx)
    job_try = int(ctx.get("job_try", 1))
    try:
        async with unit(ctx) as work:
            handled = await processing.process_message(
                work.session, context.services, message_id, utcnow()
            )
            # Automated steps the message opened run once its changes are committed.
            if handled is not None:
                work.send(*handled.jobs)
    except Exception as exc:
        if database_unavailable(exc):
            raise  # an outage, not a failure of the message: retried, never given up for it
        if job_try < context.settings.worker.max_tries:
            log.warning("inbound message failed; retrying", message=message_id, error=str(exc))
            raise Retry(defer=backoff_seconds(job_try)) from exc
        error = f"processing failed {job_try} times; last error: {type(exc).__name__}: {exc}"
        async with unit(ctx) as work:
            await processing.give_up(work.session, message_id, error, utcnow())
        log.error("inbound message failed for good", message=message_id, error=error)
        return "failed"
    if handled is None:
        return "nothing to do"
    log.info("inbound message", message=message_id, status=handled.status.value)
    return handled.status.value


async def resend_waiting_messages(ctx: dict[str, Any]) -> int:
    async with unit(ctx) as work:
        waiting = await hooks.waiting_message_ids(
            work.session, received_before=utcnow() - WAITING_AFTER
        )
        # Same job ids as the API's: a message whose job is still queued is not doubled.
        work.send(*(InboundMessageJob(message_id) for message_id in waiting))
    return len(waiting)
