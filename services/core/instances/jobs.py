"""Automated steps that instances ask the workers to run, queued after commit."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis

from services.core.work import queue_job

RUN_AUTOMATED_STEP = "run_automated_step"


@dataclass(frozen=True)
class QueuedJob:
    """An automated step to run: `job` is the step's job name from the catalog."""

    instance_id: str
    task_id: str
    job: str

    @property
    def job_id(self) -> str:
        # Deterministic: enqueueing the same task twice (a retry, the sweep) runs it once.
        return f"automated:{self.task_id}"

    async def send(self, queue: ArqRedis, *, request_id: str | None = None) -> bool:
        return await queue_job(
            queue,
            RUN_AUTOMATED_STEP,
            self.instance_id,
            self.task_id,
            self.job,
            job_id=self.job_id,
            request_id=request_id,
        )
