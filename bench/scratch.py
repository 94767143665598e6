"""A scratch PostgreSQL database per benchmark run: created next to the given server's
database, dropped at the end. Shared by the scripts in this folder."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import make_url

from services.core.settings import get_settings

T = TypeVar("T")


@dataclass(frozen=True)
class Database:
    admin_dsn: str  # libpq DSN of the database CREATE/DROP DATABASE runs in
    dsn: str  # libpq DSN of the scratch database
    sqlalchemy_url: str
    name: str
    host: str
    port: int
    user: str


def scratch_database(postgres_url: str) -> Database:
    url = make_url(postgres_url)
    name = f"alur_bench_{secrets.token_hex(4)}"
    libpq = url.set(drivername="postgresql")
    return Database(
        admin_dsn=libpq.render_as_string(hide_password=False),
        dsn=libpq.set(database=name).render_as_string(hide_password=False),
        sqlalchemy_url=url.set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False
        ),
        name=name,
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
    )


async def admin(database: Database, statement: str) -> None:
    """Run `statement` (CREATE/DROP DATABASE) outside the scratch database."""
    connection = await asyncpg.connect(database.admin_dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def cancel_on_sigterm() -> None:
    """SIGTERM (a cancelled `make bench`) cancels the running main task, so that its
    `finally` blocks stop servers and drop the scratch database."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def in_scratch_database(
    postgres_url: str, body: Callable[[Database], Awaitable[T]], **environment: str
) -> T:
    """Run `body` against a fresh scratch database, with the settings' environment
    pointed at it (`ALUR_DATABASE__URL` and `environment`); drop it afterwards."""
    database = scratch_database(postgres_url)
    os.environ.update(
        ALUR_ENV="test",
        ALUR_AUTH__JWT_SECRET=secrets.token_urlsafe(30),
        ALUR_DATABASE__URL=database.sqlalchemy_url,
        ALUR_LOG__LEVEL="WARNING",
        **environment,
    )
    get_settings.cache_clear()
    await admin(database, f'CREATE DATABASE "{database.name}"')
    try:
        return await body(database)
    finally:
        await admin(database, f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


def run_main(main: Callable[[], Coroutine[Any, Any, int]]) -> None:
    """`sys.exit(asyncio.run(main()))`, with 130 when interrupted (the `finally` blocks
    have run by then)."""
    try:
        sys.exit(asyncio.run(main()))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
