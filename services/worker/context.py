"""What every job gets: settings, the database, the use-case collaborators, HTTP."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.core.automation.service import Handler
from services.core.availability import Outages
from services.core.catalog.loader import load_catalog
from services.core.db import create_engine, session_factory
from services.core.files.storage import FileStore
from services.core.logging import current_request_id
from services.core.monitors.rdap import RdapBootstrap
from services.core.monitors.service import MonitorOptions
from services.core.settings import DEFAULT_RDAP_SERVERS, Settings, get_settings
from services.core.shared import Services
from services.core.work import UnitOfWork
from services.core.work import unit as work_unit
from services.worker.handlers import default_handlers


@dataclass
class WorkerContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    services: Services
    handlers: dict[str, Handler]
    http: httpx.AsyncClient
    monitor_options: MonitorOptions
    worker_id: str
    # What the worker knows of its database and Redis being down (see `runner`).
    outages: Outages
    # Webhook deliveries: aiohttp costs a tenth of httpx's CPU per request (bench/webhooks.py).
    webhooks_http: aiohttp.ClientSession
    # Evidence files, and the reports built for download.
    files: FileStore
    # One relay and one delivery pump at a time in this process; the relay wakes the pump.
    relaying: asyncio.Lock = field(default_factory=asyncio.Lock)
    pumping: asyncio.Lock = field(default_factory=asyncio.Lock)
    deliveries_waiting: asyncio.Event = field(default_factory=asyncio.Event)
    # One notification relay and one sender at a time in this process.
    notifying: asyncio.Lock = field(default_factory=asyncio.Lock)
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)


# The ctx key under which the worker hands its `Outages` to the startup.
OUTAGES = "alur_outages"


def _trust(settings: Settings) -> ssl.SSLContext | bool:
    if settings.monitors.ca_file is None:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=str(settings.monitors.ca_file))
    return context


def monitor_options(settings: Settings) -> MonitorOptions:
    source = settings.monitors.rdap_bootstrap or DEFAULT_RDAP_SERVERS
    return MonitorOptions(
        rdap=RdapBootstrap.load(source),
        certificate_thresholds=tuple(settings.monitors.certificate_alert_days),
        ca_file=str(settings.monitors.ca_file) if settings.monitors.ca_file else None,
    )


def of(ctx: dict[str, Any]) -> WorkerContext:
    """The typed context arq's `ctx` dict carries."""
    return cast(WorkerContext, ctx["alur"])


@asynccontextmanager
async def unit(ctx: dict[str, Any], *, read_only: bool = False) -> AsyncIterator[UnitOfWork]:
    """A job's unit of work (`services.core.work.unit`): committed, then its jobs queued
    with the id of the request that started the chain. A failure to queue raises: the
    job is tried again, or the cron's next run does its work. `read_only`: a unit that
    only reads (on SQLite, it waits for no writer)."""
    async with work_unit(
        of(ctx).sessions,
        ctx["redis"],
        read_only=read_only,
        request_id=current_request_id(),
        strict=True,
    ) as work:
        yield work


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
        http=httpx.AsyncClient(
            timeout=10.0,
            follow_redirects=False,
            verify=_trust(settings),
            headers={"user-agent": "Alur monitor"},
        ),
        monitor_options=monitor_options(settings),
        worker_id=f"{socket.gethostname()}:{os.getpid()}",
        outages=ctx.get(OUTAGES) or Outages.of_worker(),
        webhooks_http=webhooks_client(settings),
        files=FileStore.from_settings(settings),
    )


def webhooks_client(settings: Settings) -> aiohttp.ClientSession:
    """Webhook receivers' client: `concurrency` connections at most, kept alive; no
    cookies (one receiver's would go to another on the same host); no proxy from the
    environment. Timeouts are set per attempt."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.webhooks.concurrency),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None),
        trust_env=False,
    )


async def shutdown(ctx: dict[str, Any]) -> None:
    context = of(ctx)
    await context.http.aclose()
    await context.webhooks_http.close()
    await context.engine.dispose()
