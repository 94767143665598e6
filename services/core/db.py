"""Database plumbing: metadata naming, a UTC timestamp type, engines and units of work.

The boundary (a request dependency, a job, a CLI command) owns the transaction through
`unit_of_work`; services only `flush()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _json_text(value: Any) -> str:
    # JSON columns are written on every transition: orjson is several times faster.
    return orjson.dumps(value).decode()


def create_engine(settings: Settings) -> AsyncEngine:
    url = sa.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        if url.database:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            echo=settings.database.echo,
            json_serializer=_json_text,
            json_deserializer=orjson.loads,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        echo=settings.database.echo,
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
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block succeeds, rolled back when it raises."""
    async with sessions() as session, session.begin():
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
