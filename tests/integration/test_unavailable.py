"""While the database is down, requests answer 503 `unavailable` with `Retry-After`, not
500, and the API serves again as soon as it is back; while Redis is down, a request that
enqueues after its commit succeeds (the sweeps send the job later).

PostgreSQL is a server of the test's own, stopped with a fast shutdown (sessions are
cut, new connections refused: a restart as clients see it). SQLite's file goes away
with its directory, as an unmounted volume would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from services.api.context import AppContext
from services.api.problems import install_problem_handlers
from services.core.settings import DatabaseSettings, RedisSettings, Settings
from tests.servers import PostgresServer, RedisServer
from tests.support import TEST_DATABASE_URL, TokenFactory, serving

CONTENT = "konten-website"


def _with(settings: Settings, **sections: Any) -> Settings:
    return settings.model_copy(update=sections)


async def _requests(http: httpx.AsyncClient, headers: dict[str, str]) -> list[httpx.Response]:
    """Reads and a write, each needing the database."""
    return [
        await http.get("/v1/sops", headers=headers),
        await http.get("/v1/instances", headers=headers),
        await http.get("/v1/tasks", params={"mine": "true"}, headers=headers),
        await http.post(
            "/v1/instances", json={"sop": CONTENT, "title": "Saat basis data mati"}, headers=headers
        ),
    ]


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert (body["code"], body["status"]) == ("unavailable", 503)
    assert body["type"] == "urn:alur:problem:unavailable"


async def _eventually_served(
    http: httpx.AsyncClient, headers: dict[str, str], within: float = 15.0
) -> None:
    deadline = time.monotonic() + within
    while True:
        responses = await _requests(http, headers)
        if all(r.status_code in (200, 201) for r in responses):
            return
        assert all(r.status_code in (200, 201, 503) for r in responses), responses
        assert time.monotonic() < deadline, [r.status_code for r in responses]
        await asyncio.sleep(0.3)


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [
        dict(record.msg)
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == name
    ]


async def test_requests_get_503_while_postgresql_is_down(
    migrated: Settings,
    postgres_server: PostgresServer,
    auth_headers: TokenFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = auth_headers(["staf_ti", "admin"])
    async with serving(_with(migrated, database=DatabaseSettings(url=postgres_server.url))) as (
        _,
        http,
    ):
        assert all(r.status_code in (200, 201) for r in await _requests(http, headers))
        with caplog.at_level(logging.INFO):
            try:
                postgres_server.stop()
                # The pooled connections die with their sessions; new ones are refused.
                for response in [*await _requests(http, headers), *await _requests(http, headers)]:
                    _assert_unavailable(response)
            finally:
                postgres_server.start()
            await _eventually_served(http, headers)
    # One line when the outage began, one when it ended: not one per request.
    assert len(_events(caplog, "database unavailable")) == 1
    assert len(_events(caplog, "database back")) == 1


async def test_requests_get_503_while_the_sqlite_file_is_gone(
    migrated: Settings, own_database: str, tmp_path: Path, auth_headers: TokenFactory
) -> None:
    if TEST_DATABASE_URL is not None:
        pytest.skip("SQLite only; PostgreSQL is stopped for real in the test above")
    headers = auth_headers(["staf_ti", "admin"])
    async with serving(_with(migrated, database=DatabaseSettings(url=own_database))) as (app, http):
        assert all(r.status_code in (200, 201) for r in await _requests(http, headers))

        (tmp_path / "db").rename(tmp_path / "away")
        # SQLite keeps its file open in pooled connections; a new connection finds it gone.
        context: AppContext = app.state.context
        await context.engine.dispose()
        for response in await _requests(http, headers):
            _assert_unavailable(response)

        (tmp_path / "away").rename(tmp_path / "db")
        await _eventually_served(http, headers)


async def test_a_request_that_enqueues_succeeds_while_redis_is_down(
    migrated: Settings, redis_server: RedisServer, auth_headers: TokenFactory
) -> None:
    """SOP 10 starts with an automated step: its job is enqueued after the commit. With
    Redis down the instance is still started (the stranded-step sweep sends the job)."""
    headers = auth_headers(["staf_ti", "admin"])
    async with serving(_with(migrated, redis=RedisSettings(url=redis_server.url))) as (_, http):
        redis_server.stop()
        started = await http.post(
            "/v1/instances",
            json={"sop": "monitoring-sinkronisasi-backup-sipp", "title": "Redis mati"},
            headers=headers,
        )
        assert started.status_code == 201, started.text
        instance = await http.get(f"/v1/instances/{started.json()['id']}", headers=headers)
        assert instance.status_code == 200
        assert [task["step_id"] for task in instance.json()["tasks"]] == ["sinkron_backup_otomatis"]


async def test_other_errors_of_those_libraries_stay_500() -> None:
    """Only an unreachable dependency is a 503: a fault is a 500, whatever raised it."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/duplicate")
    async def duplicate() -> None:
        raise sa.exc.IntegrityError("INSERT ...", {}, Exception("duplicate key value"))

    @app.get("/file")
    async def file() -> None:
        raise FileNotFoundError(2, "No such file or directory", "/srv/backup")

    @app.get("/refused")
    async def refused() -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 5432)")

    # A 500 is re-raised to the server (which logs it); here the client gets the response.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://alur.test") as http:
        for path in ("/duplicate", "/file"):
            response = await http.get(path)
            assert response.status_code == 500, path
            assert response.json()["code"] == "internal_error"
            assert "retry-after" not in response.headers
        _assert_unavailable(await http.get("/refused"))
