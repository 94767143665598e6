"""The deadline sweep's loop: batches of the core sweep, each its own transaction, owned
here by the worker (`services.core.instances.deadlines.sweep` works in the transaction
it is given)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db import unit_of_work
from services.core.instances.deadlines import BATCH_SIZE, SweepRaced, sweep
from services.core.shared import Services

log = structlog.get_logger(__name__)


@dataclass
class BacklogReport:
    batches: int = 0
    tasks: int = 0
    instances: int = 0
    events: int = 0
    raced: int = 0
    event_types: Counter[str] = field(default_factory=Counter)


async def sweep_backlog(
    sessions: async_sessionmaker[AsyncSession],
    services: Services,
    now: datetime,
    *,
    multiples: Sequence[int],
    parallel: int,
    budget_seconds: float,
    limit: int = BATCH_SIZE,
) -> BacklogReport:
    """Work off everything due at `now`: batches of `limit`, each its own transaction (no
    instance stays locked for long), until a batch comes back not full or
    `budget_seconds` have passed (the rest is left to the next run). On PostgreSQL
    `parallel` loops run at once (`ALUR_WORKER__SWEEP_PARALLEL_BATCHES`; the rows are
    locked SKIP LOCKED, so they take different instances); SQLite has one writer, so one
    loop. A batch that raced a transition ends its loop; its rows are swept on the next
    run."""
    report = BacklogReport()
    started = time.monotonic()
    bind = sessions.kw.get("bind")
    if bind is None or bind.dialect.name != "postgresql":
        parallel = 1

    async def batches() -> None:
        while time.monotonic() - started < budget_seconds:
            try:
                async with unit_of_work(sessions) as session:
                    batch = await sweep(session, services, now, multiples=multiples, limit=limit)
            except SweepRaced as exc:
                log.info("sweep batch raced a transition; retried next run", reason=str(exc))
                report.raced += 1
                return
            report.batches += 1
            report.tasks += batch.tasks
            report.instances += batch.instances
            report.events += batch.events
            report.event_types.update(batch.event_types)
            if not batch.more:
                return

    await asyncio.gather(*(batches() for _ in range(parallel)))
    return report
