"""Delivery attempts sent to the arq queue, after the transaction that scheduled them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from arq.connections import ArqRedis

from services.core.instances.jobs import QUEUE_NAME

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


async def enqueue_deliveries(queue: ArqRedis, jobs: Sequence[DeliveryJob]) -> int:
    """Queue the attempts; returns how many were new to the queue."""
    queued = 0
    for job in jobs:
        if await queue.enqueue_job(
            DELIVER_WEBHOOK,
            job.delivery_id,
            job.attempt,
            _job_id=job.job_id,
            _queue_name=QUEUE_NAME,
        ):
            queued += 1
    return queued
