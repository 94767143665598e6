"""`alur worker` as deployed, against servers of the test's own that go away and come
back: the worker stays up, logs each outage once, and is healthy again within seconds
of the return, with no restart by hand; a backlog does not starve its heartbeat."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from arq.connections import ArqRedis, create_pool
from arq.connections import RedisSettings as ArqRedisSettings
from arq.constants import job_key_prefix
from arq.jobs import Job, serialize_job
from redis.asyncio import Redis

from services.core.settings import (
    PROJECT_ROOT,
    DatabaseSettings,
    HealthSettings,
    RedisSettings,
    Settings,
)
from services.core.telemetry.worker_stats import (
    JobStats,
    heartbeat_ages,
    queue_depth,
    read_job_stats,
)
from services.core.work import QUEUE_NAME
from tests.servers import PostgresServer, RedisServer
from tests.support import TEST_JWT_SECRET, serving

ALUR = [sys.executable, "-m", "services.cli.main"]
SLOT = "2026-01-05T08:00:00+00:00"


class WorkerProcess:
    """`alur worker` in a child process, its log lines (JSON) kept in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._output = log.open("wb")
        self.process = subprocess.Popen(
            [*ALUR, "worker"], env=env, cwd=PROJECT_ROOT, stdout=self._output, stderr=self._output
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for raw in self.log.read_bytes().splitlines():
            try:
                found.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                found.append({"event": raw.decode(errors="replace"), "unparsed": True})
        return found

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == name]

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()


def worker_env(database_url: str, redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALUR_")}
    env.update(
        {
            "ALUR_ENV": "test",
            "ALUR_DATA_DIR": str(data_dir),
            "ALUR_DATABASE__URL": database_url,
            "ALUR_REDIS__URL": redis_url,
            "ALUR_AUTH__JWT_SECRET": TEST_JWT_SECRET,
            "ALUR_LOG__JSON_FORMAT": "true",
            # Beats every second, so that a stale heartbeat shows within a short test.
            "ALUR_WORKER__HEARTBEAT_SECONDS": "1",
        }
    )
    env.update(extra)
    return env


@contextmanager
def running_worker(env: dict[str, str], log: Path) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(env, log)
    try:
        yield worker
    finally:
        worker.stop()


def check_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`alur worker --check`, a container's healthcheck, on this host."""
    return subprocess.run(
        [*ALUR, "worker", "--check"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@asynccontextmanager
async def redis_client(url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


async def newest_heartbeat_age(redis: Redis) -> float | None:
    ages = await heartbeat_ages(redis)
    return ages[0] if ages else None


async def wait_for_heartbeat(redis: Redis, worker: WorkerProcess, within: float) -> float:
    """Seconds until a heartbeat younger than 2 s shows up."""
    started = time.monotonic()
    while True:
        assert worker.alive(), worker.lines()[-20:]
        try:
            age = await newest_heartbeat_age(redis)
        except OSError:
            age = None
        if age is not None and age < 2:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"no fresh heartbeat within {within} s"
        await asyncio.sleep(0.2)


def assert_each_change_logged_once(worker: WorkerProcess, dependency: str, outages: int) -> None:
    """Each outage's start and end, once each: never the same state twice in a row. (A
    job that failed just before the return may report it once more: one outage more.)"""
    changes = [
        line["event"]
        for line in worker.lines()
        if line.get("event") in (f"{dependency} unavailable", f"{dependency} back")
    ]
    assert changes[::2] == [f"{dependency} unavailable"] * len(changes[::2]), changes
    assert changes[1::2] == [f"{dependency} back"] * len(changes[1::2]), changes
    assert outages <= len(changes) // 2 <= outages + 1, changes
    assert len(changes) % 2 == 0, changes  # it ended back


@asynccontextmanager
async def job_queue(url: str) -> AsyncIterator[ArqRedis]:
    queue = await create_pool(ArqRedisSettings.from_dsn(url), default_queue_name=QUEUE_NAME)
    try:
        yield queue
    finally:
        await queue.aclose()


async def check_missing_monitor(queue: ArqRedis) -> Job:
    """A real job that needs the database: the check of a monitor that does not exist."""
    job = await queue.enqueue_job("check_monitor", str(uuid.uuid4()), SLOT, _queue_name=QUEUE_NAME)
    assert job is not None
    return job


async def eventually_ready(http: httpx.AsyncClient, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        response = await http.get("/readyz")
        if response.status_code == 200:
            return
        assert time.monotonic() < deadline, response.json()
        await asyncio.sleep(0.5)


async def until_logged(worker: WorkerProcess, event: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not worker.events(event):
        assert worker.alive(), worker.lines()
        assert time.monotonic() < deadline, worker.lines()
        await asyncio.sleep(0.2)


async def test_the_worker_rides_out_redis_outages(
    migrated: Settings, own_database: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Started before Redis (a host's boot, `docker compose up`), the worker waits for it.
    Later Redis stops and starts again on its port, empty: the worker keeps running,
    writes its heartbeat again within seconds and runs jobs; an API beside it is ready
    again; `alur worker --check` follows."""
    env = worker_env(own_database, redis_server.url, tmp_path)
    api = migrated.model_copy(
        update={
            "database": DatabaseSettings(url=own_database),
            "redis": RedisSettings(url=redis_server.url),
            "health": HealthSettings(require_worker=True, worker_stale_seconds=16),
        }
    )
    redis_server.stop()
    with running_worker(env, tmp_path / "worker.log") as worker:
        await until_logged(worker, "redis unavailable")
        await asyncio.sleep(2)  # it tries again, and again
        redis_server.start()
        async with redis_client(redis_server.url) as redis:
            await wait_for_heartbeat(redis, worker, within=30)
            async with serving(api) as (_, http):
                assert (await http.get("/readyz")).status_code == 200

                redis_server.stop()
                await asyncio.sleep(3)  # polls and beats fail, again and again
                assert worker.alive()
                assert (await http.get("/readyz")).status_code == 503
                assert check_worker(env).returncode == 1

                redis_server.start()
                assert await wait_for_heartbeat(redis, worker, within=30) < 30
                await eventually_ready(http, within=30)
                assert check_worker(env).returncode == 0
            async with job_queue(redis_server.url) as queue:
                job = await check_missing_monitor(queue)
                assert await job.result(timeout=30, poll_delay=0.2) == "inactive"
            assert worker.alive()
    assert_each_change_logged_once(worker, "redis", outages=2)


async def test_the_worker_rides_out_a_database_outage(
    postgres_server: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    """PostgreSQL stops (a fast shutdown: sessions are cut) and starts again: the worker
    keeps running, stops beating while it cannot work, retries the job that found the
    database down, and is healthy again within seconds; cron jobs run again."""
    env = worker_env(postgres_server.url, redis_server.url, tmp_path)
    async with redis_client(redis_server.url) as redis, job_queue(redis_server.url) as queue:
        with running_worker(env, tmp_path / "worker.log") as worker:
            await wait_for_heartbeat(redis, worker, within=30)
            try:
                postgres_server.stop()
                job = await check_missing_monitor(queue)
                await asyncio.sleep(6)  # cron runs (relay, sweeps) and the job's tries fail
                assert worker.alive()
                age = await newest_heartbeat_age(redis)
                assert (age or float("inf")) > 3, "a worker that cannot work still beat"
                relayed = _successes(await read_job_stats(redis), "relay_outbox")
            finally:
                postgres_server.start()
            assert await wait_for_heartbeat(redis, worker, within=30) < 30
            assert await job.result(timeout=60, poll_delay=0.2) == "inactive"
            deadline = time.monotonic() + 30
            while _successes(await read_job_stats(redis), "relay_outbox") <= relayed:
                assert time.monotonic() < deadline, "the outbox relay (a cron job) did not run"
                await asyncio.sleep(0.5)
            assert worker.alive()
    assert_each_change_logged_once(worker, "database", outages=1)
    # The outage is logged once, not as a traceback per job and cron run.
    assert not [line for line in worker.lines() if "exception" in line], worker.lines()


def _successes(stats: list[JobStats], job: str) -> int:
    return sum(s.outcomes.get("success", 0) for s in stats if s.job == job)


async def fill_queue(redis_url: str, count: int) -> None:
    """`count` real jobs queued at once: checks of monitors that do not exist (each one
    reads the database and ends), as a burst of deliveries would queue them."""
    now_ms = int(time.time() * 1000)
    async with job_queue(redis_url) as queue, queue.pipeline(transaction=False) as pipe:
        for n in range(count):
            job_id = f"backlog:{n}"
            body = serialize_job("check_monitor", (str(uuid.uuid4()), SLOT), {}, None, now_ms)
            pipe.psetex(job_key_prefix + job_id, 3_600_000, body)
            pipe.zadd(QUEUE_NAME, {job_id: now_ms + n})
        await pipe.execute()


async def test_a_backlog_does_not_starve_the_heartbeat(
    own_database: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    """As a cron job in the same queue, the beat waited behind every job queued before
    it (here it went unwritten for the whole 8 s; 50,000 deliveries once made /readyz
    call a busy worker dead). A task of its own beats every second regardless."""
    await fill_queue(redis_server.url, 20_000)
    env = worker_env(own_database, redis_server.url, tmp_path, ALUR_LOG__LEVEL="WARNING")
    async with redis_client(redis_server.url) as redis:
        with running_worker(env, tmp_path / "worker.log") as worker:
            await wait_for_heartbeat(redis, worker, within=30)
            ages = []
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                age = await newest_heartbeat_age(redis)
                ages.append(age if age is not None else float("inf"))
                await asyncio.sleep(0.25)
            backlog = await queue_depth(redis)
            assert worker.alive()
    # The backlog was still there at the end: the heartbeat had to compete with it.
    assert backlog > 1_000, backlog
    assert max(ages) < 4, ages
