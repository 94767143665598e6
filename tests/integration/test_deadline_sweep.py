"""The deadline sweep against the real database, and through a real arq worker."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.catalog.loader import load_catalog
from services.core.db import session_factory, unit_of_work
from services.core.instances.deadlines import SweepRaced, sweep
from services.core.settings import Settings, WorkerSettings
from services.core.shared import Services
from services.core.work import QUEUE_NAME
from services.worker.settings import ArqSettings
from services.worker.sweep import sweep_backlog
from tests.support import TokenFactory

# The escalation levels of the default settings.
MULTIPLES = WorkerSettings().escalation_multiples
# The worker's sweep job, without its time budget.
NO_BUDGET = float("inf")

pytestmark = pytest.mark.both_paths

# Monday 2 November 2026, 08:00 WIB: a working Monday (no holiday).
STARTED = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
WIB = timezone(timedelta(hours=7))


@pytest.fixture
def services(settings: Settings) -> Services:
    catalog = load_catalog(settings.catalog.path)
    return Services(roles={role.id: role for role in catalog.roles})


async def _backdated_wifi(client: httpx.AsyncClient, auth_headers: TokenFactory) -> str:
    """SOP 08 step 1 (pengguna, "15 menit"), begun on paper on Monday at 08:00."""
    response = await client.post(
        "/v1/instances",
        # As a clerk in Tais writes it: "2026-11-02T08:00:00+07:00".
        json={
            "sop": "wifi-internet",
            "title": "Akun",
            "started_at": STARTED.astimezone(WIB).isoformat(),
        },
        headers=auth_headers(["pengguna", "admin"]),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _notices(engine: AsyncEngine, instance_id: str) -> list[tuple[str, Any]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                "SELECT type, data FROM audit_event WHERE instance_id = :id "
                "AND (type LIKE 'task.%' OR type LIKE 'instance.%') "
                "AND type NOT IN ('task.opened', 'instance.started') ORDER BY seq"
            ),
            {"id": instance_id},
        )
        # Raw SQL returns JSON as text on SQLite, as a mapping on PostgreSQL.
        return [
            (
                row.type,
                (json.loads(row.data) if isinstance(row.data, str) else row.data).get("to_role"),
            )
            for row in rows
        ]


async def _sweep_at(engine: AsyncEngine, services: Services, now: datetime) -> int:
    async with unit_of_work(session_factory(engine)) as session:
        return (await sweep(session, services, now, multiples=MULTIPLES)).events


async def test_backdated_instance_escalates_level_by_level_once(
    client: httpx.AsyncClient, auth_headers: TokenFactory, engine: AsyncEngine, services: Services
) -> None:
    instance_id = await _backdated_wifi(client, auth_headers)
    # 15 working minutes: warn at 12 (80 %), due at 15, level 2 at 30, level 3 at 45.
    moments = [STARTED + timedelta(minutes=m) for m in (5, 13, 16, 31, 46, 90)]
    for now in moments:
        await _sweep_at(engine, services, now)
        await _sweep_at(engine, services, now)  # a retry of the same sweep adds nothing
    notices = await _notices(engine, instance_id)
    assert notices == [
        ("task.due_soon", None),
        ("task.overdue", None),
        ("task.escalated", "staf_ti"),
        ("task.escalated", "kasubbag_ptip"),
        ("task.escalated", "sekretaris"),
    ]
    task = await client.get(f"/v1/instances/{instance_id}", headers=auth_headers(["pengguna"]))
    shown = task.json()["tasks"][0]
    assert (shown["escalation_level"], shown["overdue"]) == (3, True)
    audit = await client.get(
        f"/v1/instances/{instance_id}/audit", headers=auth_headers(["pengguna"])
    )
    assert audit.json()["valid"] is True


async def test_parallel_sweeps_fire_each_level_once(
    client: httpx.AsyncClient, auth_headers: TokenFactory, engine: AsyncEngine, services: Services
) -> None:
    ids = [await _backdated_wifi(client, auth_headers) for _ in range(5)]
    now = STARTED + timedelta(minutes=31)
    results = await asyncio.gather(
        *(_sweep_at(engine, services, now) for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(r, int | SweepRaced) for r in results), results
    await _sweep_at(engine, services, now)  # whatever a raced batch left, now done
    for instance_id in ids:
        counts = Counter(await _notices(engine, instance_id))
        assert counts[("task.overdue", None)] == 1
        assert counts[("task.escalated", "staf_ti")] == 1
        assert counts[("task.escalated", "kasubbag_ptip")] == 1
        assert counts[("task.escalated", "sekretaris")] == 0


@pytest.mark.parametrize("parallel", [1, 3])
async def test_a_backlog_is_worked_off_in_batches_each_notice_once(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    engine: AsyncEngine,
    services: Services,
    parallel: int,
) -> None:
    # More due than one batch holds: the job's loops (`parallel` at once on PostgreSQL,
    # taking different rows) go on until a batch comes back not full.
    ids = [await _backdated_wifi(client, auth_headers) for _ in range(7)]
    now = STARTED + timedelta(minutes=31)
    report = await sweep_backlog(
        session_factory(engine),
        services,
        now,
        limit=2,
        parallel=parallel,
        multiples=MULTIPLES,
        budget_seconds=NO_BUDGET,
    )
    assert report.batches >= 4
    assert report.raced == 0
    assert report.tasks >= len(ids)
    for instance_id in ids:
        assert await _notices(engine, instance_id) == [
            ("task.overdue", None),
            ("task.escalated", "staf_ti"),
            ("task.escalated", "kasubbag_ptip"),
        ]
    again = await sweep_backlog(
        session_factory(engine),
        services,
        now,
        limit=2,
        parallel=parallel,
        multiples=MULTIPLES,
        budget_seconds=NO_BUDGET,
    )
    assert again.events == 0


async def test_nothing_due_costs_nothing(engine: AsyncEngine, services: Services) -> None:
    assert await _sweep_at(engine, services, STARTED - timedelta(days=365)) == 0


async def test_outbox_carries_the_notices(
    client: httpx.AsyncClient, auth_headers: TokenFactory, engine: AsyncEngine, services: Services
) -> None:
    instance_id = await _backdated_wifi(client, auth_headers)
    await _sweep_at(engine, services, STARTED + timedelta(minutes=16))
    async with engine.connect() as connection:
        types = (
            await connection.execute(
                sa.text(
                    "SELECT o.type FROM outbox o JOIN audit_event e ON e.id = o.event_id "
                    "WHERE e.instance_id = :id ORDER BY e.seq"
                ),
                {"id": instance_id},
            )
        ).scalars()
        assert "task.escalated" in list(types)


async def test_a_real_worker_runs_the_sweep(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    engine: AsyncEngine,
    settings: Settings,
) -> None:
    """Two burst-mode workers on the real queue; the sweep job is enqueued twice with the
    same id (as two replicas' cron would): it runs once and escalates once."""
    instance_id = await _backdated_wifi(client, auth_headers)
    assert settings.redis.url is not None
    redis_settings = RedisSettings.from_dsn(settings.redis.url)
    # arq's default (1 s) is too short here: while one worker's startup loads the catalog
    # (blocking, seconds on a busy machine) the other's connection attempt waits.
    redis_settings.conn_timeout = 10
    pool = await create_pool(redis_settings, default_queue_name=QUEUE_NAME)
    try:
        for _ in range(2):
            # The same id twice; another run's (the other path's) result must not match it.
            await pool.enqueue_job("deadline_sweep", _job_id=f"test-sweep-once-{instance_id}")
        workers = [
            Worker(
                functions=[*ArqSettings.functions, _sweep_function()],
                redis_pool=pool,
                queue_name=QUEUE_NAME,
                burst=True,
                on_startup=ArqSettings.on_startup,
                on_shutdown=ArqSettings.on_shutdown,
                poll_delay=0.05,
                handle_signals=False,
            )
            for _ in range(2)
        ]
        await asyncio.gather(*(worker.main() for worker in workers))
        for worker in workers:
            # Not worker.close(): it closes our pool with a call redis deprecates.
            await ArqSettings.on_shutdown(worker.ctx)
    finally:
        await pool.aclose()
    counts = Counter(await _notices(engine, instance_id))
    assert counts[("task.overdue", None)] == 1
    assert counts[("task.escalated", "sekretaris")] == 1


def _sweep_function() -> Any:
    from arq.worker import func

    from services.worker.tasks import deadline_sweep

    return func(deadline_sweep, name="deadline_sweep")
