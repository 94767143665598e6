"""What the app holds for its lifetime: settings, database, Redis, catalog, caches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.core.auth.keys import KeyRing
from services.core.auth.lockout import Lockout
from services.core.auth.service import SignInContext
from services.core.availability import Outages
from services.core.engine.definition import Catalog
from services.core.identity.tokens import TokenVerifier
from services.core.instances.jobs import QueuedJob, enqueue_jobs
from services.core.instances.service import Services
from services.core.people.acting import ActingRegistry
from services.core.settings import Settings

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

    # The database or Redis found down by a request, until one finds them back.
    outages: Outages = field(default_factory=Outages)

    @property
    def sign_in(self) -> SignInContext:
        return SignInContext(
            auth=self.settings.auth, keys=self.keys, lockout=Lockout(self.redis, self.settings.auth)
        )

    async def enqueue(self, jobs: Sequence[QueuedJob], *, request_id: str | None = None) -> None:
        """Send jobs after commit. A failure loses nothing: the open task is durable in
        the database and the worker's sweep enqueues it again."""
        try:
            await enqueue_jobs(self.queue, jobs, request_id=request_id)
        except (RedisError, OSError) as exc:
            log.warning("enqueue failed; the sweep will retry", error=str(exc), jobs=len(jobs))
        else:
            self.outages.redis.back()
