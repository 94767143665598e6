"""The job that processes a stored inbound message, queued after commit."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis

from services.core.work import queue_job

PROCESS_INBOUND_MESSAGE = "process_inbound_message"


def job_id(message_id: str) -> str:
    # Deterministic: the API, a sender's retry and the resend cron queue it once.
    return f"inbound:{message_id}"


@dataclass(frozen=True)
class InboundMessageJob:
    message_id: str

    @property
    def job_id(self) -> str:
        return job_id(self.message_id)

    async def send(self, queue: ArqRedis, *, request_id: str | None = None) -> bool:
        return await queue_job(
            queue,
            PROCESS_INBOUND_MESSAGE,
            self.message_id,
            job_id=self.job_id,
            request_id=request_id,
        )
