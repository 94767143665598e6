"""The workers' figures in Redis: heartbeats, job counts and durations, queue depth.

Workers run on other hosts than the API, so a process-local registry (or
prometheus-client's multiprocess mode, which shares files on one host) cannot show them.
Each job instead adds to one Redis hash; any API replica reads it at scrape time. The
values are cumulative across worker restarts and replicas, as Prometheus counters
expect; they reset only if Redis loses its data, which `rate()` tolerates.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from services.core.work import QUEUE_NAME

HEARTBEAT_KEY = "alur:worker:heartbeat"
JOB_METRICS_KEY = "alur:metrics:jobs"

# Seconds; jobs range from a heartbeat (milliseconds) to a SIPP check (minutes).
JOB_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# Field layout: "count|<job>|<outcome>", "sum|<job>", "bucket|<job>|<upper bound>" (the
# bucket fields are not cumulative, so one observation is one HINCRBY). "|" cannot occur
# in a job name, which is a Python function name.
_SEPARATOR = "|"


@dataclass(frozen=True)
class JobStats:
    job: str
    outcomes: dict[str, int]
    # Cumulative (upper bound, count) pairs in bucket order, ending with +Inf.
    buckets: list[tuple[float, int]]
    sum_seconds: float

    @property
    def count(self) -> int:
        return self.buckets[-1][1]


def _bound(seconds: float) -> float:
    return next((bound for bound in JOB_DURATION_BUCKETS if seconds <= bound), math.inf)


async def record_job(redis: Redis, job: str, outcome: str, seconds: float) -> None:
    """Count one finished run of `job` (success, retry, failure, cancelled)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(JOB_METRICS_KEY, f"count|{job}|{outcome}", 1)
        pipe.hincrbyfloat(JOB_METRICS_KEY, f"sum|{job}", seconds)
        pipe.hincrby(JOB_METRICS_KEY, f"bucket|{job}|{_bound(seconds)!r}", 1)
        await pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _hgetall(redis: Redis, key: str) -> Awaitable[dict[bytes | str, bytes | str]]:
    # redis-py types its commands for both its sync and asyncio clients.
    return cast(Awaitable[dict[bytes | str, bytes | str]], redis.hgetall(key))


async def read_job_stats(redis: Redis) -> list[JobStats]:
    raw = await _hgetall(redis, JOB_METRICS_KEY)
    outcomes: dict[str, dict[str, int]] = defaultdict(dict)
    per_bucket: dict[str, dict[float, int]] = defaultdict(dict)
    sums: dict[str, float] = {}
    for key, value in raw.items():
        kind, _, rest = _text(key).partition(_SEPARATOR)
        if kind == "count":
            job, _, outcome = rest.rpartition(_SEPARATOR)
            outcomes[job][outcome] = int(value)
        elif kind == "sum":
            sums[rest] = float(value)
        elif kind == "bucket":
            job, _, upper = rest.rpartition(_SEPARATOR)
            per_bucket[job][float(upper)] = int(value)
    stats = []
    for job in sorted(outcomes):
        running, buckets = 0, []
        observed = per_bucket[job]
        for bound in (*JOB_DURATION_BUCKETS, math.inf):
            running += observed.get(bound, 0)
            buckets.append((bound, running))
        stats.append(JobStats(job, outcomes[job], buckets, sums.get(job, 0.0)))
    return stats


async def heartbeat_ages(
    redis: Redis, now: float | None = None, *, host: str | None = None
) -> list[float]:
    """Seconds since each worker's last heartbeat, youngest first (empty: none alive
    within the heartbeat key's expiry). `host`: only the workers on that host (each
    beats under `<host>:<pid>`)."""
    now = time.time() if now is None else now
    beats = await _hgetall(redis, HEARTBEAT_KEY)
    return sorted(
        max(0.0, now - float(_text(value)))
        for worker, value in beats.items()
        if host is None or _text(worker).rpartition(":")[0] == host
    )


async def queue_depth(redis: Redis) -> int:
    """Jobs waiting in the arq queue, deferred retries included."""
    return int(await redis.zcard(QUEUE_NAME))
