"""The unit of work: one transaction, owned by the boundary that runs it (a request, a
job), and what must wait until it has committed: the jobs it queues for the worker and
the caches its change made stale.

    async with unit(sessions, queue) as work:
        applied = await instances.apply(work.session, ...)
        work.send(*applied.queued_jobs())
    # committed; then the jobs were queued

Core use cases take `work.session` and return what to queue; they open no transaction of
their own. The API (`services.api.deps.Work`, `AppContext.unit`) and the worker
(`services.worker.context.unit`) run every change through `unit`.

Queueing after the commit means a job never runs before the data it reads is there. A
failure to queue loses nothing: what a job does is durable in the database (an open
automated task, a received message, a due delivery) and a sweep of the worker's queues it
again. So the API logs such a failure and answers; the worker (`strict`) raises, and its
job or cron run is tried again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db import unit_of_work

log = structlog.get_logger(__name__)

# The one arq queue of every job (ARCHITECTURE.md, Workers).
QUEUE_NAME = "alur:queue"


async def queue_job(
    queue: ArqRedis, function: str, *args: Any, job_id: str, request_id: str | None = None
) -> bool:
    """Queue `function(*args)` under its deterministic `job_id`; False when a job of that id
    is already queued or running. `request_id`: the request that caused it, bound in its
    log lines (`services.worker.instrumentation` takes it out of the job's keywords)."""
    correlation: dict[str, Any] = {} if request_id is None else {"request_id": request_id}
    queued = await queue.enqueue_job(
        function, *args, _job_id=job_id, _queue_name=QUEUE_NAME, **correlation
    )
    return queued is not None


class Job(Protocol):
    """Something for the worker to do once the unit has committed."""

    @property
    def job_id(self) -> str:
        """Deterministic: the same work queued twice (a retry, a sweep) runs once."""
        ...

    async def send(self, queue: ArqRedis, *, request_id: str | None) -> bool:
        """Queue it; False when a job of that id was already queued or running."""
        ...


@dataclass
class UnitOfWork:
    session: AsyncSession
    jobs: list[Job] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # Once committed: how many jobs were new to the queue, and why queueing failed.
    queued: int = 0
    queue_error: Exception | None = None

    def send(self, *jobs: Job) -> None:
        """Queue `jobs` once the transaction has committed."""
        self.jobs.extend(jobs)


@asynccontextmanager
async def unit(
    sessions: async_sessionmaker[AsyncSession],
    queue: ArqRedis,
    *,
    read_only: bool = False,
    request_id: str | None = None,
    strict: bool = False,
) -> AsyncIterator[UnitOfWork]:
    """Commit the block's transaction (roll it back if the block raises), then run the
    `after_commit` callbacks and queue the jobs. `request_id` goes with the jobs into
    their log lines. `strict`: a failure to queue raises instead of being logged."""
    async with unit_of_work(sessions, read_only=read_only) as session:
        work = UnitOfWork(session)
        yield work
    for callback in work.after_commit:
        callback()
    for job in work.jobs:
        try:
            work.queued += await job.send(queue, request_id=request_id)
        except (RedisError, OSError) as exc:
            if strict:
                raise
            work.queue_error = exc
            log.warning(
                "jobs not queued; a sweep will queue them",
                error=str(exc),
                jobs=len(work.jobs),
                first=work.jobs[0].job_id,
            )
            break
