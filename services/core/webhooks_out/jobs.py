"""Delivery attempts sent to the arq queue, after the transaction that scheduled them."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis

from services.core.work import queue_job

DELIVER_WEBHOOK = "deliver_webhook"


@dataclass(frozen=True)
class DeliveryJob:
    delivery_id: int
    attempt: int

    @property
    def job_id(self) -> str:
        # Deterministic: the relay, the sweep and a redelivery asking for the same
        # attempt queue it once (arq refuses a job id that is queued or running).
        return f"delivery:{self.delivery_id}:{self.attempt}"

    async def send(self, queue: ArqRedis, *, request_id: str | None = None) -> bool:
        return await queue_job(
            queue,
            DELIVER_WEBHOOK,
            self.delivery_id,
            self.attempt,
            job_id=self.job_id,
            request_id=request_id,
        )
