"""Every job's shell around the job shell: log context, outcome and duration.

`instrumented(job)` is what the worker settings register, so each job - cron or queued -
is counted once by name and outcome in Redis (see `services.core.telemetry.worker_stats`)
and every log line it writes carries the job's `function`, `job_id`, `job_try` and,
when a request enqueued it, that request's `request_id`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from arq import Retry
from redis.exceptions import RedisError

from services.core.logging import REQUEST_ID
from services.core.telemetry.worker_stats import record_job

log = structlog.get_logger(__name__)

Job = Callable[..., Coroutine[Any, Any, Any]]


def instrumented(job: Job) -> Job:
    name = job.__name__

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        # Correlation metadata travels as a job keyword (see `enqueue_jobs`); the job
        # functions themselves never see it.
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
            except Retry:
                outcome = "retry"
                raise
            except asyncio.CancelledError:
                # A timeout, an abort, or a worker shutting down: arq runs it again.
                outcome = "cancelled"
                raise
            finally:
                await _record(ctx, name, outcome, time.perf_counter() - started)

    return run


async def _record(ctx: dict[str, Any], name: str, outcome: str, seconds: float) -> None:
    # Metrics must never fail (or retry) the job they describe.
    try:
        await record_job(ctx["redis"], name, outcome, seconds)
    except (RedisError, OSError) as exc:
        log.warning("job metrics not recorded", error=str(exc))
