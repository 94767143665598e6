"""`alur worker`: arq's worker, kept alive through Redis and database outages.

arq's main loop ends on the first Redis error, and the process with it: after a Redis
restart the worker was gone for good and `/readyz` stayed 503. This worker waits for
Redis instead, trying again with exponential backoff and jitter, logs once when Redis
goes and once when it is back, and carries on with the jobs it holds. Jobs that find the
database down are retried (see `instrumentation`). The heartbeat is a task of its own
(see `heartbeat`), so neither a backlog nor an outage of one dependency hides the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from arq.connections import ArqRedis
from arq.typing import StartupShutdown
from arq.worker import Worker
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from services.core.availability import Outages, redis_unavailable
from services.worker.context import OUTAGES
from services.worker.heartbeat import keep_beating

# Waits between attempts while Redis is down: 0.5-1 s, 1-2 s, 2-4 s, then 2.5-5 s, so
# the worker is back at work within seconds of Redis's return.
REDIS_RETRY = EqualJitterBackoff(cap=5.0, base=0.5)
# No Redis command of the worker blocks: one that takes this long met a dead connection.
REDIS_SOCKET_TIMEOUT_SECONDS = 10.0
REDIS_CONNECT_TIMEOUT_SECONDS = 2.0


class AlurWorker(Worker):
    """An arq `Worker` (same settings) that rides out Redis outages and beats on its own.

    `redis_url` is where it connects (a `redis_pool` may be given instead)."""

    def __init__(
        self,
        *args: Any,
        redis_url: str | None = None,
        on_startup: StartupShutdown | None = None,
        **kwargs: Any,
    ) -> None:
        self.outages = Outages.of_worker()
        super().__init__(*args, on_startup=self._start, ctx={OUTAGES: self.outages}, **kwargs)
        self._redis_url = redis_url
        self._startup = on_startup
        self._started = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._redis_failures = 0

    async def _start(self, ctx: dict[str, Any]) -> None:
        if self._startup is not None:
            await self._startup(ctx)
        self._started = True
        self._heartbeat = asyncio.create_task(keep_beating(ctx, self.outages))

    async def main(self) -> None:
        if self._pool is None and self._redis_url is not None:
            pool = ArqRedis.from_url(
                self._redis_url,
                socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
                socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
                # After Redis restarts, every pooled connection is dead: each command's
                # first use of one fails at once. One immediate retry on a new connection
                # hides that, so the outage is not reported again after its end (while
                # Redis is down, the retry fails as fast). Every command of the worker
                # bears a second try: reads, and writes keyed by job or worker id.
                retry=Retry(NoBackoff(), 1),
                retry_on_error=[RedisConnectionError],
            )
            pool.default_queue_name = self.queue_name
            self._pool = pool
            await self._until_redis_answers()
        await super().main()

    async def _until_redis_answers(self) -> None:
        failures = 0
        while True:
            try:
                await self.pool.ping()
            except Exception as error:
                if not redis_unavailable(error):
                    raise
                self.outages.redis.lost(error)
                failures += 1
                await asyncio.sleep(REDIS_RETRY.compute(failures))
            else:
                self.outages.redis.back()
                return

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except Exception as error:
            if not redis_unavailable(error):
                raise
            self.outages.redis.lost(error)
            self._redis_failures += 1
            await asyncio.sleep(REDIS_RETRY.compute(self._redis_failures))
            return
        if self._redis_failures:
            self._redis_failures = 0
            self.outages.redis.back()
            # Cron slots missed while Redis was away are not made up one by one (a burst
            # of sweeps and relays after a long outage): each job runs at its next time.
            for cron_job in self.cron_jobs:
                cron_job.next_run = None

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        try:
            await super().start_jobs(job_ids)
        except Exception as error:
            if redis_unavailable(error):
                # arq had taken a slot (its semaphore and job counter) for the job it was
                # starting when Redis failed; each outage at that moment would otherwise
                # leave the worker one concurrent job short, until it picked none at all.
                self._release_sem_dec_counter_on_complete()
            raise

    async def close(self) -> None:
        """As arq's, but a Redis that is down does not keep the shutdown from finishing."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._pool is None:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self.pool.delete(self.health_check_key)
        if self._started and self.on_shutdown is not None:
            await self.on_shutdown(self.ctx)
        await self.pool.aclose()
        self._pool = None
