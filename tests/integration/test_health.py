"""Liveness and readiness probes, against dependencies that really go away and return.

- Redis: a `redis-server` this test starts on a free port, stops, and starts again.
- PostgreSQL: a database of its own on the test server, closed to connections with
  `ALTER DATABASE ... ALLOW_CONNECTIONS false` plus terminating its backends (what a
  server restart or a failover looks like to the app), then opened again.
- SQLite: a copy of the suite's database whose directory is moved away. SQLite keeps
  its file open in pooled connections, so the loss shows only to new connections: the
  test drops the pool, as a restarted process or a recycled connection would.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from services.api.context import AppContext
from services.core.settings import DatabaseSettings, HealthSettings, RedisSettings, Settings
from services.core.telemetry.worker_stats import HEARTBEAT_KEY
from tests.servers import RedisServer
from tests.support import TEST_DATABASE_URL, serving


async def test_healthz_needs_nothing(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_each_check(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "migrations", "catalog", "redis", "worker"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    # The suite runs no worker: the check reports instead of failing (tests/conftest.py).
    assert "not required" in body["checks"]["worker"]["detail"]


async def _readiness(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await http.get("/readyz")
    return response.status_code, response.json()["checks"]


async def _eventually_ready(http: httpx.AsyncClient, within: float = 15.0) -> None:
    """A returning dependency is picked up by the next connection attempt; allow for
    the pools' own retry timing rather than assume the very first probe sees it."""
    deadline = time.monotonic() + within
    while True:
        status, checks = await _readiness(http)
        if status == 200:
            return
        assert time.monotonic() < deadline, checks
        await asyncio.sleep(0.2)


def _with(settings: Settings, **sections: Any) -> Settings:
    return settings.model_copy(update=sections)


async def test_readyz_needs_a_fresh_worker_heartbeat(migrated: Settings, redis_url: str) -> None:
    strict = _with(migrated, health=HealthSettings(require_worker=True, worker_stale_seconds=90))
    store = redis.asyncio.Redis.from_url(redis_url)
    try:
        await store.delete(HEARTBEAT_KEY)
        async with serving(strict) as (_, http):
            status, checks = await _readiness(http)
            assert (status, checks["worker"]) == (
                503,
                {"status": "fail", "detail": "no worker heartbeat"},
            )

            await store.hset(HEARTBEAT_KEY, "worker-a", f"{time.time() - 200:.3f}")
            status, checks = await _readiness(http)
            assert status == 503
            assert checks["worker"]["status"] == "fail"
            assert "newest worker heartbeat is 200 s old" in checks["worker"]["detail"]

            # One live worker is enough, whatever its dead colleagues left behind.
            await store.hset(HEARTBEAT_KEY, "worker-b", f"{time.time() - 5:.3f}")
            status, checks = await _readiness(http)
            assert status == 200, checks
            assert checks["worker"]["status"] == "ok"
    finally:
        await store.delete(HEARTBEAT_KEY)
        await store.aclose()


async def test_readyz_follows_redis_down_and_back(
    migrated: Settings, redis_server: RedisServer
) -> None:
    async with serving(_with(migrated, redis=RedisSettings(url=redis_server.url))) as (_, http):
        assert (await _readiness(http))[0] == 200

        redis_server.stop()
        status, checks = await _readiness(http)
        assert status == 503
        assert checks["redis"]["status"] == "fail"
        assert checks["database"]["status"] == "ok"

        redis_server.start()
        await _eventually_ready(http)


async def _close_postgres_database(url: str, *, closed: bool) -> None:
    name = sa.make_url(url).database
    assert TEST_DATABASE_URL is not None
    assert name is not None
    admin = create_async_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            allow = "false" if closed else "true"
            await connection.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {allow}'))
            if closed:
                await connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
    finally:
        await admin.dispose()


async def test_readyz_follows_the_database_down_and_back(
    migrated: Settings, own_database: str, tmp_path: Path
) -> None:
    settings = _with(migrated, database=DatabaseSettings(url=own_database))
    async with serving(settings) as (app, http):
        assert (await _readiness(http))[0] == 200

        if TEST_DATABASE_URL is None:
            (tmp_path / "db").rename(tmp_path / "away")
            context: AppContext = app.state.context
            await context.engine.dispose()
        else:
            await _close_postgres_database(own_database, closed=True)
        status, checks = await _readiness(http)
        assert status == 503
        assert checks["database"]["status"] == "fail", checks
        assert checks["redis"]["status"] == "ok"

        if TEST_DATABASE_URL is None:
            (tmp_path / "away").rename(tmp_path / "db")
        else:
            await _close_postgres_database(own_database, closed=False)
        await _eventually_ready(http)
