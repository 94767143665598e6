"""The delivery pump: the attempts now due (retries and expired leases first, then
first attempts), claimed in batches, sent at once up to a concurrency, their outcomes
recorded in batches.

One claim statement leases many deliveries (`delivery.claim_due`), so the per-attempt
cost of the database is a share of a few statements rather than two transactions of
its own; the HTTP requests overlap. The pump claims only as many as it has room for,
so nothing waits leased without being sent, and records what finished at least every
`RECORD_EVERY_SECONDS`, so a killed worker leaves little unrecorded behind (those
attempts are made again once their lease runs out: at least once).

It runs while there is work: when a claim comes back empty and nothing is in flight it
waits a little for the relay (`wake`) and stops once it has been idle for
`LINGER_SECONDS`, or after `run_seconds` (under the job timeout), whichever is first.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.db import unit_of_work, utcnow
from services.core.settings import WebhookSettings
from services.core.webhooks_out import delivery
from services.core.webhooks_out.targets import Target

log = structlog.get_logger(__name__)

CLAIM_BATCH = 100
RECORD_EVERY_SECONDS = 0.2
# After an empty or short claim, the next one waits this long (or for `wake`).
CLAIM_PAUSE_SECONDS = 0.2
LINGER_SECONDS = 1.0
RUN_SECONDS = 60.0


@dataclass
class PumpReport:
    attempts: int = 0
    states: Counter[str] = field(default_factory=Counter)


async def run(
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    settings: WebhookSettings,
    *,
    concurrency: int,
    wake: asyncio.Event | None = None,
    run_seconds: float = RUN_SECONDS,
    clock: Callable[[], datetime] = utcnow,
) -> PumpReport:
    report = PumpReport()
    finished: list[tuple[delivery.Claim, delivery.Outcome]] = []
    sending: set[asyncio.Task[None]] = set()
    progress = asyncio.Event()
    wake = wake or asyncio.Event()
    started = last_record = idle_since = time.monotonic()
    claim_after = 0.0
    recording: asyncio.Task[None] | None = None
    # Claims wait for room for half a batch: fewer, fuller statements.
    least = max(1, min(concurrency, CLAIM_BATCH) // 2)

    async def attempt(claimed: delivery.Claim, target: Target | delivery.Outcome) -> None:
        try:
            outcome = await delivery.send(http, claimed, settings, target)
        except Exception as exc:
            # One attempt's failure, not the pump's: it is retried like a network error.
            log.warning("webhook attempt failed unexpectedly", error=type(exc).__name__)
            outcome = delivery.Outcome(None, f"unexpected error: {type(exc).__name__}", 0)
        finished.append((claimed, outcome))
        progress.set()

    async def record() -> None:
        nonlocal last_record
        batch = finished[:]
        finished.clear()
        last_record = time.monotonic()
        try:
            async with unit_of_work(sessions) as session:
                states = await delivery.record_many(session, batch, settings, clock())
        except (SQLAlchemyError, OSError) as exc:
            # Not recorded: their leases run out and they are made again (at least once).
            log.warning("webhook outcomes not recorded", attempts=len(batch), error=str(exc))
            report.states["unrecorded"] += len(batch)
            return
        report.states.update(state.split(" ", 1)[0] for state in states)

    try:
        while True:
            now = time.monotonic()
            running = now - started < run_seconds
            room = concurrency - len(sending)
            if wake.is_set():  # the relay made deliveries
                claim_after = 0.0
            if running and now >= claim_after and room >= least:
                wake.clear()
                asked = min(room, CLAIM_BATCH)
                try:
                    async with unit_of_work(sessions) as session:
                        claims = await delivery.claim_due(session, settings, clock(), limit=asked)
                except (SQLAlchemyError, OSError) as exc:
                    # Nothing was claimed; what is in flight is still recorded.
                    log.warning("webhook deliveries not claimed", error=str(exc))
                    claims, run_seconds = [], 0.0
                resolved = {
                    url: await delivery.resolve(url, settings) for url in {c.url for c in claims}
                }
                for claimed in claims:
                    task = asyncio.create_task(attempt(claimed, resolved[claimed.url]))
                    sending.add(task)
                    task.add_done_callback(sending.discard)
                report.attempts += len(claims)
                claim_after = 0.0 if len(claims) == asked else now + CLAIM_PAUSE_SECONDS
                if claims:
                    idle_since = now
            idle_recorder = recording is None or recording.done()
            if recording is not None and recording.done():
                recording.result()  # a failure other than the database's is a bug: raise it
            if (
                finished
                and idle_recorder
                and (
                    not sending
                    or len(finished) >= CLAIM_BATCH
                    or time.monotonic() - last_record >= RECORD_EVERY_SECONDS
                )
            ):
                # Recorded beside the next claims and attempts: nothing waits for it.
                recording = asyncio.create_task(record())
                recording.add_done_callback(lambda _: progress.set())
                idle_recorder = False
            if not sending and not finished and idle_recorder:
                # A pump that found work lingers a moment for more; one that found none
                # stops at once (the next run is a second away).
                linger = LINGER_SECONDS if report.attempts else 0.0
                if not running or time.monotonic() - idle_since >= linger:
                    break
                # Nothing to do until the relay brings deliveries or the pause is over.
                await _wait(wake, max(0.0, claim_after - time.monotonic()))
                claim_after = 0.0
                continue
            await _wait(progress, RECORD_EVERY_SECONDS)
            progress.clear()
    finally:
        if sending:  # cancelled (the worker stops): the leases bring these back
            for task in sending:
                task.cancel()
            await asyncio.gather(*sending, return_exceptions=True)
        if recording is not None:
            await asyncio.shield(recording)
        if finished:
            await asyncio.shield(record())
    return report


async def _wait(event: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass
