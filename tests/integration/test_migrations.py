"""Migrations run forward to head, back to nothing, and forward again, on this backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from services.core import migrate
from services.core.settings import get_settings
from tests.conftest import TEST_DATABASE_URL, _create_database, _drop_database


@pytest.fixture
async def scratch_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    if TEST_DATABASE_URL is None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
        name = None
    else:
        name = f"alur_scratch_{uuid.uuid4().hex[:10]}"
        await _create_database(TEST_DATABASE_URL, name)
        url = sa.make_url(TEST_DATABASE_URL).set(database=name).render_as_string(False)
    monkeypatch.setenv("ALUR_DATABASE__URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
    if name is not None:
        await _drop_database(TEST_DATABASE_URL, name)  # type: ignore[arg-type]


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    await engine.dispose()
    return set(names)


async def test_upgrade_downgrade_upgrade(scratch_database: str) -> None:
    await asyncio.to_thread(migrate.upgrade)
    tables = await _tables(scratch_database)
    assert {"sop_definition", "role", "alembic_version"} <= tables

    await asyncio.to_thread(migrate.downgrade, "base")
    assert await _tables(scratch_database) <= {"alembic_version"}

    await asyncio.to_thread(migrate.upgrade)
    assert await _tables(scratch_database) == tables
