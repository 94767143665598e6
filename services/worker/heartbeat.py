"""The worker's sign of life, which the API's readiness check can read."""

from __future__ import annotations

import time
from typing import Any

from services.core.telemetry.worker_stats import HEARTBEAT_KEY
from services.worker.context import of

HEARTBEAT_TTL_SECONDS = 60


async def beat(ctx: dict[str, Any]) -> None:
    """Record, per worker, the time it last ran; the key expires when all workers die."""
    redis = ctx["redis"]
    await redis.hset(HEARTBEAT_KEY, of(ctx).worker_id, f"{time.time():.3f}")
    await redis.expire(HEARTBEAT_KEY, HEARTBEAT_TTL_SECONDS)
