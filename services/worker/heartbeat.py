"""The worker's sign of life, which `/readyz`, `/metrics` and `alur worker --check` read.

A task of its own in each worker process writes it, every
`ALUR_WORKER__HEARTBEAT_SECONDS`, whatever the queue holds: as a cron job it waited
behind a backlog (50,000 queued deliveries), and `/readyz` called a busy worker dead.
It beats only while the worker can work: its database answers and Redis takes the beat.
While either is down it tries again sooner (at most 5 s apart), so that the beat is
fresh again within seconds of their return.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import sqlalchemy as sa
from redis.asyncio import Redis
from redis.backoff import EqualJitterBackoff
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.availability import Outages
from services.core.redis import connect
from services.core.telemetry.worker_stats import HEARTBEAT_KEY, heartbeat_ages
from services.worker.context import of

# The heartbeat key expires when no worker beat for this long.
HEARTBEAT_TTL_SECONDS = 60
DATABASE_PROBE_SECONDS = 5.0
# While the database or Redis is down, the next attempt is at most this far away.
RETRY_CAP_SECONDS = 5.0


async def beat(redis: Redis, worker_id: str) -> None:
    """Record the time `worker_id` last beat; the key expires when all workers die."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(HEARTBEAT_KEY, worker_id, f"{time.time():.3f}")
        pipe.expire(HEARTBEAT_KEY, HEARTBEAT_TTL_SECONDS)
        await pipe.execute()


async def _database_answers(engine: AsyncEngine) -> None:
    async with asyncio.timeout(DATABASE_PROBE_SECONDS), engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))


async def keep_beating(ctx: dict[str, Any], outages: Outages) -> None:
    """Beat until cancelled (when the worker stops)."""
    context = of(ctx)
    interval = context.settings.worker.heartbeat_seconds
    retry = EqualJitterBackoff(cap=min(interval, RETRY_CAP_SECONDS), base=0.5)
    failures = 0
    while True:
        try:
            await _database_answers(context.engine)
        except Exception as error:  # whatever keeps it from answering, the worker cannot work
            outages.database.lost(error)
        else:
            outages.database.back()
            try:
                await beat(ctx["redis"], context.worker_id)
            except (RedisError, OSError) as error:
                outages.redis.lost(error)
            else:
                outages.redis.back()
                failures = 0
                await asyncio.sleep(interval)
                continue
        failures += 1
        await asyncio.sleep(retry.compute(failures))


async def host_heartbeat_age(redis_url: str, host: str) -> float | None:
    """Seconds since the freshest heartbeat of a worker on `host`; None if there is none."""
    redis = connect(redis_url)
    try:
        ages = await heartbeat_ages(redis, host=host)
    finally:
        await redis.aclose()
    return ages[0] if ages else None
