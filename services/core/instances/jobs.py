"""Jobs that instances ask the workers to run, sent to the arq queue after commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis

QUEUE_NAME = "alur:queue"
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


async def enqueue_jobs(
    queue: ArqRedis, jobs: Sequence[QueuedJob], *, request_id: str | None = None
) -> None:
    """`request_id`: the request that caused the jobs, bound in their log lines (the
    worker's instrumentation takes it out of the job's keywords)."""
    correlation: dict[str, Any] = {} if request_id is None else {"request_id": request_id}
    for job in jobs:
        await queue.enqueue_job(
            RUN_AUTOMATED_STEP,
            job.instance_id,
            job.task_id,
            job.job,
            _job_id=job.job_id,
            _queue_name=QUEUE_NAME,
            **correlation,
        )
