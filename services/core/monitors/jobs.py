"""The job that checks one monitor for one scheduled slot, queued after commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from arq.connections import ArqRedis

from services.core.work import queue_job

CHECK_MONITOR = "check_monitor"


@dataclass(frozen=True)
class MonitorCheckJob:
    monitor_id: str
    slot: datetime

    @property
    def job_id(self) -> str:
        # Deterministic: a slot is checked once, however often the scheduler sees it due.
        return f"monitor:{self.monitor_id}:{self.slot.timestamp():.0f}"

    async def send(self, queue: ArqRedis, *, request_id: str | None = None) -> bool:
        return await queue_job(
            queue,
            CHECK_MONITOR,
            self.monitor_id,
            self.slot.isoformat(),
            job_id=self.job_id,
            request_id=request_id,
        )
