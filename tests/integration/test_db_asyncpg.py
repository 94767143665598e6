"""`asyncpg_connection`: plain SQL on PostgreSQL inside (or, when asked, outside) the
session's transaction; nothing on other backends."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.db import (
    PLAIN_SQL,
    asyncpg_connection,
    session_factory,
    statements_stand_alone,
)

# A table of its own: the statements below commit for real.
TABLE = "probe_asyncpg_connection"


@pytest.fixture
async def probe_table(engine: AsyncEngine) -> str | None:
    if engine.dialect.driver != "asyncpg":
        return None
    async with engine.begin() as connection:
        await connection.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {TABLE} (id text)"))
    return TABLE


async def _count(engine: AsyncEngine, marker: str) -> int:
    async with engine.connect() as connection:
        query = sa.text(f"SELECT count(*) FROM {TABLE} WHERE id = :id")
        return int((await connection.execute(query, {"id": marker})).scalar_one())


async def test_none_on_other_backends(engine: AsyncEngine) -> None:
    if engine.dialect.driver == "asyncpg":
        pytest.skip("PostgreSQL has the connection")
    async with session_factory(engine)() as session, session.begin():
        assert await asyncpg_connection(session) is None


async def test_none_when_the_engine_sends_everything_through_sqlalchemy(
    engine: AsyncEngine,
) -> None:
    core = engine.execution_options(**{PLAIN_SQL: False})
    async with session_factory(core)() as session, session.begin():
        assert await asyncpg_connection(session) is None


async def test_statements_belong_to_the_sessions_transaction(
    engine: AsyncEngine, probe_table: str | None
) -> None:
    if probe_table is None:
        pytest.skip("PostgreSQL only")
    marker = str(uuid.uuid4())
    async with session_factory(engine)() as session:
        async with session.begin():
            pg = await asyncpg_connection(session)
            assert pg is not None
            assert pg.is_in_transaction()
            await pg.execute(f"INSERT INTO {TABLE} VALUES ($1)", marker)
            assert await asyncpg_connection(session) is pg  # asked again: the same one
            await session.rollback()
        assert await _count(engine, marker) == 0, "a rolled back session kept the row"
        async with session.begin():
            pg = await asyncpg_connection(session)
            assert pg is not None
            await pg.execute(f"INSERT INTO {TABLE} VALUES ($1)", marker)
            # Not visible outside before the commit: one transaction with the session's.
            assert await _count(engine, marker) == 0
    assert await _count(engine, marker) == 1


async def test_stand_alone_statements_commit_on_their_own_until_a_transaction_opens(
    engine: AsyncEngine, probe_table: str | None
) -> None:
    if probe_table is None:
        pytest.skip("PostgreSQL only")
    alone, joined = str(uuid.uuid4()), str(uuid.uuid4())
    async with session_factory(engine)() as session, session.begin():
        statements_stand_alone(session)
        pg = await asyncpg_connection(session)
        assert pg is not None
        assert not pg.is_in_transaction()
        await pg.execute(f"INSERT INTO {TABLE} VALUES ($1)", alone)
        assert await _count(engine, alone) == 1  # committed by itself
        # SQLAlchemy opens the transaction as usual; later statements join it.
        await session.execute(sa.text("SELECT 1"))
        assert pg.is_in_transaction()
        await (await asyncpg_connection(session)).execute(  # type: ignore[union-attr]
            f"INSERT INTO {TABLE} VALUES ($1)", joined
        )
        await session.rollback()
    assert await _count(engine, alone) == 1
    assert await _count(engine, joined) == 0
