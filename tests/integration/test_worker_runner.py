"""The worker's own bookkeeping through a Redis outage, on a Redis of the test's own."""

from __future__ import annotations

from typing import Any

import pytest
import redis.exceptions
from arq.connections import RedisSettings as ArqRedisSettings
from arq.connections import create_pool
from arq.worker import func

from services.core.work import QUEUE_NAME
from services.worker.runner import AlurWorker
from tests.servers import RedisServer


async def _noop(ctx: dict[str, Any]) -> None:
    return None


async def test_a_job_start_cut_by_redis_gives_its_slot_back(redis_server: RedisServer) -> None:
    """arq takes a slot (of `max_jobs`) before it marks a job as started in Redis; if Redis
    fails right then, the slot must come back, or each such outage leaves the worker one
    job short until it starts none at all while its heartbeat says it is fine."""
    pool = await create_pool(
        ArqRedisSettings.from_dsn(redis_server.url), default_queue_name=QUEUE_NAME
    )
    worker = AlurWorker(
        functions=[func(_noop, name="noop")],
        redis_pool=pool,
        queue_name=QUEUE_NAME,
        handle_signals=False,
        max_jobs=2,
    )
    try:
        redis_server.stop()
        for _ in range(worker.max_jobs + 1):
            with pytest.raises(redis.exceptions.ConnectionError):
                await worker.start_jobs([b"noop-1"])
        assert worker.job_counter == 0

        redis_server.start()
        jobs = [await pool.enqueue_job("noop", _queue_name=QUEUE_NAME) for _ in range(2)]
        await worker.start_jobs([job.job_id.encode() for job in jobs if job is not None])
        assert len(worker.tasks) == worker.max_jobs
        for task in worker.tasks.values():
            await task
    finally:
        await pool.aclose()
