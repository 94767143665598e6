"""The embedded database under contention: writes queue instead of failing, readers never
wait for the writer, and a wait too long is a 503 the client may retry, not a 500."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from services.api.context import AppContext
from services.core import db
from services.core.db import unit_of_work
from services.core.settings import Settings
from tests.support import TEST_DATABASE_URL, TokenFactory, serving

pytestmark = pytest.mark.skipif(
    TEST_DATABASE_URL is not None, reason="SQLite's single writer (the embedded default)"
)

START = {"sop": "konten-website", "title": "Contention"}
WRITER = ["pembuat_artikel"]

# Another process (the worker beside the API, here a plain sqlite3 client) holding the
# database's write lock for a while.
_HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


@asynccontextmanager
async def another_process_writing(settings: Settings, seconds: float) -> AsyncIterator[None]:
    path = sa.make_url(settings.database_url).database
    assert path is not None
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_LOCK, path, str(seconds), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        assert await process.stdout.readline() == b"locked\n"
        yield
    finally:
        await asyncio.wait_for(process.communicate(), 30)


async def test_writes_queue_behind_another_process_writer(
    client: httpx.AsyncClient, auth_headers: TokenFactory, settings: Settings
) -> None:
    """Forty requests that write, all while the worker holds the lock for 4.5 s: each
    waits its turn and succeeds (SQLite's busy handler alone let them race, and those
    waiting over 5 s failed with "database is locked")."""
    headers = auth_headers([*WRITER, "admin_website"])
    started = [await client.post("/v1/instances", json=START, headers=headers) for _ in range(20)]
    async with another_process_writing(settings, 4.5):
        answers = await asyncio.gather(
            *(client.post("/v1/instances", json=START, headers=headers) for _ in range(20)),
            *(
                client.post(
                    f"/v1/instances/{instance.json()['id']}/transitions",
                    json={"step": "siapkan_sumber_data"},
                    headers=headers,
                )
                for instance in started
            ),
        )
    assert [answer.status_code for answer in answers] == [201] * 20 + [200] * 20


async def test_a_write_does_not_wait_for_the_readers_connections(
    migrated: Settings, auth_headers: TokenFactory
) -> None:
    one = migrated.model_copy(
        update={"database": migrated.database.model_copy(update={"pool_size": 1})}
    )
    async with serving(one) as (app, client):
        context: AppContext = app.state.context
        # The caches a request reads first (acting assignments, signing keys) are reads:
        # they use the readers' connections, filled here before those are taken.
        warm = await client.get("/v1/tasks", headers=auth_headers(WRITER))
        assert warm.status_code == 200, warm.text
        async with unit_of_work(context.sessions, read_only=True) as reading:
            # The readers' only connection is taken...
            await reading.execute(sa.text("SELECT 1"))
            # ... and a write goes through on the writers' own.
            answer = await asyncio.wait_for(
                client.post("/v1/instances", json=START, headers=auth_headers(WRITER)), 20
            )
            assert answer.status_code == 201, answer.text


async def test_readers_do_not_wait_for_the_writer(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    context: AppContext = app.state.context
    started = await client.post("/v1/instances", json=START, headers=auth_headers(WRITER))
    instance_id = started.json()["id"]
    async with unit_of_work(context.sessions) as session:
        # This unit holds the write lock (and the process's turn to write) until it ends.
        await session.execute(sa.text("UPDATE satker SET name = name"))
        reads = await asyncio.wait_for(
            asyncio.gather(
                client.get("/v1/instances", headers=auth_headers(WRITER)),
                client.get(f"/v1/instances/{instance_id}", headers=auth_headers(WRITER)),
                client.get("/v1/tasks", params={"mine": "true"}, headers=auth_headers(WRITER)),
            ),
            timeout=20,
        )
        assert [read.status_code for read in reads] == [200, 200, 200]
        # A write queues meanwhile: it is answered once this unit has committed.
        write = asyncio.create_task(
            client.post("/v1/instances", json=START, headers=auth_headers(WRITER))
        )
        await asyncio.sleep(0.5)
        assert not write.done()
    assert (await write).status_code == 201


async def test_a_write_waiting_too_long_is_a_503(
    migrated: Settings, auth_headers: TokenFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An app whose connections give up after 0.2 s (the default is 30 s).
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    async with serving(migrated) as (_, client):
        async with another_process_writing(migrated, 3):
            answer = await client.post("/v1/instances", json=START, headers=auth_headers(WRITER))
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "unavailable"
        assert int(answer.headers["Retry-After"]) > 0
        # The lock free again, the same request goes through.
        again = await client.post("/v1/instances", json=START, headers=auth_headers(WRITER))
        assert again.status_code == 201
