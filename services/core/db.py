"""Database plumbing: metadata naming, a UTC timestamp type, engines and units of work.

The boundary (a request dependency, a job, a CLI command) owns the transaction through
`unit_of_work`; services only `flush()`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel

if TYPE_CHECKING:
    import asyncpg

from services.core.settings import Settings

# Stable constraint names make migrations reproducible on PostgreSQL and SQLite alike.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = sa.JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# An engine execution option: whether the hot statements go as plain SQL on asyncpg
# (PostgreSQL; `asyncpg_connection`) or through SQLAlchemy Core. Set by `create_engine`
# from `ALUR_DATABASE__PLAIN_SQL`; an engine without it sends plain SQL.
PLAIN_SQL = "alur_plain_sql"


def utcnow() -> datetime:
    return datetime.now(UTC)


# How long a SQLite write waits for another process's writer (the worker beside the API)
# before giving up with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000
_BEGIN = "alur_sqlite_begin"
# Beside each SQLite engine, an engine of one connection that every unit of work that may
# write uses: one writer at a time per process. The others wait for the connection in
# order (the pool's queue), neither in SQLite's busy handler, which polls and lets late
# comers win, nor for a connection that readers hold.
_SQLITE_WRITERS: WeakKeyDictionary[sa.Engine, AsyncEngine] = WeakKeyDictionary()


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver would open transactions itself, BEGIN DEFERRED before the first write
    # only. Transactions are begun explicitly instead (`_sqlite_begin`).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL: readers see a snapshot and never wait on the writer, nor it on them.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    """A unit of work that may write takes the write lock when it begins (IMMEDIATE), so it
    waits for another writer in the busy timeout. Deferred, its first write would upgrade
    a read lock, which fails at once with "database is locked" when another connection
    wrote since its snapshot, whatever the busy timeout."""
    mode = connection.get_execution_options().get(_BEGIN, "DEFERRED")
    if mode is not None:  # None: no transaction, each statement on its own (reads only)
        connection.exec_driver_sql(f"BEGIN {mode}")


def _json_text(value: Any) -> str:
    # JSON columns are written on every transition: orjson is several times faster.
    return orjson.dumps(value).decode()


def _echo(settings: Settings) -> bool | None:
    """`ALUR_DATABASE__ECHO`: SQL statements through the process's logging (its format, off
    the event loop), at INFO so that result rows (DEBUG) never are. SQLAlchemy's own echo
    would add a handler of its own writing to stdout."""
    if not settings.database.echo:
        return False
    logging.getLogger("sqlalchemy.engine.Engine").setLevel(logging.INFO)
    return None  # the logger's level decides


def _sqlite_engine(url: sa.URL, settings: Settings, connections: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        echo=_echo(settings),
        hide_parameters=True,
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
        # A fixed pool: each connection is a thread of aiosqlite's.
        pool_size=connections,
        max_overflow=0,
    )
    event.listen(engine.sync_engine, "connect", _sqlite_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def create_engine(settings: Settings) -> AsyncEngine:
    url = sa.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        if url.database:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = _sqlite_engine(url, settings, settings.database.pool_size)
        writer = _sqlite_engine(url, settings, 1)
        _SQLITE_WRITERS[engine.sync_engine] = writer
        event.listen(engine.sync_engine, "engine_disposed", lambda _: writer.sync_engine.dispose())
        return engine
    return create_async_engine(
        url,
        echo=_echo(settings),
        # Statement parameters stay out of logs and error messages: they may be secrets.
        hide_parameters=True,
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
        execution_options={PLAIN_SQL: settings.database.plain_sql},
        pool_size=settings.database.pool_size,
        # A fixed pool: overflow connections, closed as soon as they are returned, were
        # opened and closed several times a second under load, each new one costing
        # PostgreSQL a backend start and this process its prepared statements again.
        max_overflow=0,
        # Recycling beats a ping per checkout: a round trip saved on every request.
        pool_recycle=1800,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession], *, read_only: bool = False
) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block succeeds, rolled back when it raises.

    On SQLite a unit that may write waits for the process's one writing connection (in
    order), then takes the database's write lock as it begins; SQLite itself makes it wait
    for another process's writer, up to the busy timeout. A `read_only` unit waits for no
    writer: each of its statements reads the newest committed data (as READ COMMITTED does
    on PostgreSQL). It must not write. Too long a wait raises SQLAlchemy's pool timeout
    or SQLite's "database is locked", which the API answers 503 `unavailable` (see
    `services.core.availability`).
    """
    engine = getattr(sessions.kw.get("bind"), "sync_engine", None)
    writer = _SQLITE_WRITERS.get(engine) if engine is not None else None
    if writer is None:
        async with sessions() as session, session.begin():
            yield session
    elif read_only:
        async with sessions() as session, session.begin():
            await session.connection(execution_options={_BEGIN: None})
            yield session
    else:
        async with sessions(bind=writer) as session, session.begin():
            await session.connection(execution_options={_BEGIN: "IMMEDIATE"})
            yield session


async def asyncpg_connection(session: AsyncSession) -> asyncpg.Connection | None:
    """On PostgreSQL, the asyncpg connection under `session`, inside its transaction;
    None on other backends, or when the engine sends everything through SQLAlchemy
    (`ALUR_DATABASE__PLAIN_SQL=false`, see `PLAIN_SQL`).

    For the hot statements that are worth sending without SQLAlchemy (see
    `services.core.instances.repository`). They run in the session's transaction.
    SQLAlchemy's asyncpg dialect opens it lazily, with the first statement it sends;
    if none was sent yet, a `SELECT 1` is (a round trip more than the BEGIN alone),
    unless `statements_stand_alone` said the statements need no transaction. Rows come
    back as asyncpg records; JSON parameters go as text (the dialect registers the json
    and jsonb codecs).
    """
    bind = session.bind
    if bind is None or bind.dialect.driver != "asyncpg":
        return None
    # The same transaction asks again (a load, then a save): its answer is known.
    transaction = session.sync_session.get_transaction()
    known = session.info.get(_DRIVER_KEY)
    if known is not None and transaction is not None and known[0] is transaction:
        cached: asyncpg.Connection | None = known[1]
        return cached
    connection = await session.connection()
    started = connection.sync_connection
    driver: asyncpg.Connection | None = None
    if started is not None and started.get_execution_options().get(PLAIN_SQL, True):
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        if not driver.is_in_transaction() and not session.info.get(_STAND_ALONE_KEY):
            await connection.exec_driver_sql("SELECT 1")
    session.info[_DRIVER_KEY] = (session.sync_session.get_transaction(), driver)
    return driver


_DRIVER_KEY = "alur.asyncpg_connection"
_STAND_ALONE_KEY = "alur.statements_stand_alone"


def statements_stand_alone(session: AsyncSession) -> None:
    """Let the statements `asyncpg_connection` sends for `session` run outside a
    transaction block, each committed on its own, if nothing opened one before them.

    Only for a unit of work whose writes are one statement, e.g. a request that applies
    one command: its reads need no transaction (the write is version-checked), and its
    write is atomic by itself. That saves the BEGIN and COMMIT round trips, about a
    third of a transition's. Anything sent through SQLAlchemy opens the transaction as
    usual, and asyncpg statements after it join it.
    """
    session.info[_STAND_ALONE_KEY] = True
