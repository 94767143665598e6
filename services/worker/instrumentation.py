"""Every job's shell around the job shell: log context, outcome and duration.

`instrumented(job)` is what the worker settings register, so each job - cron or queued -
is counted once by name and outcome in Redis (see `services.core.telemetry.worker_stats`)
and every log line it writes carries the job's `function`, `job_id`, `job_try` and,
when a request enqueued it, that request's `request_id`.

A job that finds the database unreachable is no job's fault: the outage is logged once
(not a traceback per job and run), a queued job is retried with backoff, and a cron run
is left to the next one.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from arq import Retry
from redis.backoff import EqualJitterBackoff
from redis.exceptions import RedisError

from services.core.availability import database_unavailable
from services.core.logging import REQUEST_ID
from services.core.telemetry.worker_stats import record_job
from services.worker.context import of

log = structlog.get_logger(__name__)

Job = Callable[..., Coroutine[Any, Any, Any]]

# Waits before a queued job tries again while the database is down: 2-4 s, 4-8 s, ...
# then 30-60 s; the worker's `max_tries` (10) covers an outage of several minutes.
DATABASE_RETRY = EqualJitterBackoff(cap=60.0, base=2.0)


def instrumented(job: Job, *, scheduled: bool = False) -> Job:
    """`scheduled`: a cron job, whose next run does the work of one that could not."""
    name = job.__name__

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        # Correlation metadata travels as a job keyword (see
        # `services.core.work.queue_job`); the job functions themselves never see it.
        request_id = kwargs.pop(REQUEST_ID, None)
        context: dict[str, Any] = {
            "function": name,
            "job_id": ctx.get("job_id"),
            "job_try": ctx.get("job_try"),
        }
        if request_id is not None:
            context[REQUEST_ID] = request_id
        outcome = "failure"
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(**context):
            try:
                result = await job(ctx, *args, **kwargs)
                outcome = "success"
                return result
            except Retry as retry:
                outcome = "retry"
                if retry.__cause__ is not None and database_unavailable(retry.__cause__):
                    of(ctx).outages.database.lost(retry.__cause__)
                raise
            except asyncio.CancelledError:
                # A timeout, an abort, or a worker shutting down: arq runs it again.
                outcome = "cancelled"
                raise
            except Exception as error:
                if not database_unavailable(error):
                    raise
                of(ctx).outages.database.lost(error)
                if scheduled:
                    return None
                outcome = "retry"
                job_try = int(ctx.get("job_try", 1))
                raise Retry(defer=DATABASE_RETRY.compute(job_try)) from error
            finally:
                await _record(ctx, name, outcome, time.perf_counter() - started)

    return run


async def _record(ctx: dict[str, Any], name: str, outcome: str, seconds: float) -> None:
    # Metrics must never fail (or retry) the job they describe.
    try:
        await record_job(ctx["redis"], name, outcome, seconds)
    except (RedisError, OSError) as exc:
        log.warning("job metrics not recorded", error=str(exc))
