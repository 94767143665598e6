"""What every job gets: settings, the database, the use-case collaborators, HTTP."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any, cast

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.core.automation.handlers import default_handlers
from services.core.automation.service import Handler
from services.core.catalog.loader import load_catalog
from services.core.db import create_engine, session_factory
from services.core.instances.service import Services
from services.core.settings import Settings, get_settings


@dataclass
class WorkerContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    services: Services
    handlers: dict[str, Handler]
    http: httpx.AsyncClient
    worker_id: str


def of(ctx: dict[str, Any]) -> WorkerContext:
    """The typed context arq's `ctx` dict carries."""
    return cast(WorkerContext, ctx["alur"])


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    catalog = load_catalog(settings.catalog.path)
    engine = create_engine(settings)
    ctx["alur"] = WorkerContext(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        services=Services(roles={role.id: role for role in catalog.roles}),
        handlers=default_handlers(),
        http=httpx.AsyncClient(timeout=10.0, follow_redirects=False),
        worker_id=f"{socket.gethostname()}:{os.getpid()}",
    )


async def shutdown(ctx: dict[str, Any]) -> None:
    context = of(ctx)
    await context.http.aclose()
    await context.engine.dispose()
