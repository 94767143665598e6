"""The job that processes a stored inbound message, sent to the arq queue after commit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from arq.connections import ArqRedis

from services.core.instances.jobs import QUEUE_NAME

PROCESS_INBOUND_MESSAGE = "process_inbound_message"


def job_id(message_id: str) -> str:
    # Deterministic: the API, a sender's retry and the resend cron queue it once.
    return f"inbound:{message_id}"


async def enqueue_messages(
    queue: ArqRedis, message_ids: Iterable[str], *, request_id: str | None = None
) -> None:
    """`request_id`: the request that stored the messages, for the job's log lines."""
    correlation: dict[str, Any] = {} if request_id is None else {"request_id": request_id}
    for message_id in message_ids:
        await queue.enqueue_job(
            PROCESS_INBOUND_MESSAGE,
            message_id,
            _job_id=job_id(message_id),
            _queue_name=QUEUE_NAME,
            **correlation,
        )
