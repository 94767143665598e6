"""What the app holds for its lifetime: settings, database, Redis, catalog, caches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog
from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.core.auth.keys import KeyRing
from services.core.auth.lockout import Lockout
from services.core.auth.service import SignInContext
from services.core.availability import Outages
from services.core.engine.definition import Catalog
from services.core.files.storage import FileStore
from services.core.identity.tokens import TokenVerifier
from services.core.logging import current_request_id
from services.core.people.acting import ActingRegistry
from services.core.settings import Settings
from services.core.shared import Services
from services.core.work import UnitOfWork, unit

log = structlog.get_logger(__name__)


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    queue: ArqRedis
    catalog: Catalog
    verifier: TokenVerifier
    services: Services
    keys: KeyRing
    acting: ActingRegistry
    files: FileStore

    # The database or Redis found down by a request, until one finds them back.
    outages: Outages = field(default_factory=Outages)

    @property
    def sign_in(self) -> SignInContext:
        return SignInContext(
            auth=self.settings.auth, keys=self.keys, lockout=Lockout(self.redis, self.settings.auth)
        )

    @asynccontextmanager
    async def unit(self, *, read_only: bool = False) -> AsyncIterator[UnitOfWork]:
        """A request's unit of work (`services.core.work.unit`): committed before the
        answer, then its jobs queued with the request's id. A failure to queue is logged
        and loses nothing (the worker's sweeps queue the work again)."""
        async with unit(
            self.sessions, self.queue, read_only=read_only, request_id=current_request_id()
        ) as work:
            yield work
        self.outages.database.back()
        if work.jobs and work.queue_error is None:
            self.outages.redis.back()
