"""One meaning for the two paths of the hot statements on PostgreSQL: the same commands,
sent as plain SQL on asyncpg and through SQLAlchemy Core, write the same rows —
instances, tasks, audit events with their hashes, outbox rows."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from services.core.audit.models import AuditEventRecord, OutboxRecord
from services.core.catalog.loader import load_catalog
from services.core.db import PLAIN_SQL, asyncpg_connection
from services.core.engine.state import (
    Actor,
    Assign,
    Cancel,
    Comment,
    CompleteTask,
    Release,
)
from services.core.instances import service as instances
from services.core.instances.deadlines import sweep
from services.core.instances.repository import INSTANCES, TASKS
from services.core.instances.service import InstanceView, verify_stored
from services.core.settings import Settings, WorkerSettings
from services.core.shared import Services

# The escalation levels of the default settings.
MULTIPLES = WorkerSettings().escalation_multiples

EVENTS: sa.Table = AuditEventRecord.__table__  # type: ignore[attr-defined]
OUTBOX: sa.Table = OutboxRecord.__table__  # type: ignore[attr-defined]
# Monday 2 November 2026, 08:00 WIB.
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
WIB = timezone(timedelta(hours=7))


@pytest.fixture
def roles(settings: Settings) -> dict[str, Any]:
    return {role.id: role for role in load_catalog(settings.catalog.path).roles}


async def test_both_paths_write_the_same_rows(
    app: FastAPI,  # its start-up synced the catalog into the database
    engine: AsyncEngine,
    roles: dict[str, Any],
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one path")
    plain = await _run_commands(engine, roles, plain_sql=True)
    core = await _run_commands(engine, roles, plain_sql=False)
    for table in plain:
        assert plain[table] == core[table], table
    # Not two empty lists: every kind of write happened.
    types = {row["type"] for row in plain["audit_event"]}
    assert {"task.completed", "comment.added", "task.assigned", "task.released"} <= types
    assert {"task.overdue", "task.escalated"} <= types
    assert {"instance.cancelled", "instance.started"} <= types
    assert len(plain["outbox"]) == len(plain["audit_event"]) > 20


async def _run_commands(
    engine: AsyncEngine, roles: dict[str, Any], *, plain_sql: bool
) -> dict[str, list[dict[str, Any]]]:
    """The same commands each time (ids from a counter, times given), in a transaction
    rolled back afterwards: the rows they wrote."""
    counter = itertools.count(1)
    services = Services(roles=roles, new_id=lambda: str(uuid.UUID(int=next(counter))))
    actor = Actor(sub="budi", roles=frozenset(roles) | {"admin"}, satker="pn-tais", name="Budi")
    async with engine.execution_options(**{PLAIN_SQL: plain_sql}).connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            assert (await asyncpg_connection(session) is not None) is plain_sql

            async def start(sop: str, **fields: Any) -> str:
                applied = await instances.start_instance(
                    session, services, actor, sop=sop, entry_point=None, satker=None,
                    **{"title": sop, "context": {}, "started_at": None, "now": T0, **fields},
                )  # fmt: skip
                return applied.view.record.id

            async def command(instance_id: str, hours: float, make: Any) -> None:
                await instances.apply(
                    session, services, actor, instance_id, make, if_match=None,
                    now=T0 + timedelta(hours=hours),
                )  # fmt: skip

            def complete(step: str, **fields: Any) -> Any:
                def make(view: InstanceView, acting: Actor, ids: list[str]) -> CompleteTask:
                    task = next(t for t in view.state.open_tasks if t.step_id == step)
                    return CompleteTask(actor=acting, task_id=task.id, new_task_ids=ids, **fields)

                return make

            def open_task(view: InstanceView) -> str:
                return view.state.open_tasks[0].id

            context = {"n": 1.5, "big": 2**63 - 1, "list": [1, "x", None], "nested": {"é": True}}
            article = await start("konten-website", title="Berita sidang", context=context)
            await command(article, 1, complete("siapkan_sumber_data", note="data", evidence=("a",)))
            await command(article, 2, complete("buat_konsep"))
            await command(article, 3, complete("periksa_konsep", outcome="tidak_valid"))
            await command(
                article,
                3.5,
                lambda s, a, _: Comment(actor=a, text="Perbaiki", task_id=open_task(s)),
            )
            await command(
                article,
                4,
                lambda s, a, _: Assign(actor=a, task_id=open_task(s), assignee_sub="sari"),
            )
            await command(article, 4.5, lambda s, a, _: Release(actor=a, task_id=open_task(s)))
            # Begun on paper two days before, and left to become overdue: the sweep's work.
            wifi = await start("wifi-internet", started_at=(T0 - timedelta(days=2)).astimezone(WIB))
            cancelled = await start("wifi-internet")
            await command(cancelled, 5, lambda _s, a, _: Cancel(actor=a, reason="Salah input"))
            swept = await sweep(
                session, services, T0 + timedelta(days=3), multiples=MULTIPLES, limit=100_000
            )
            assert swept.events > 0
            await command(article, 80, complete("buat_konsep", note="versi 2"))

            ids = [article, wifi, cancelled]
            assert await verify_stored(session, ids) == (3, [])
            return await _rows(connection, ids)
        finally:
            await session.close()
            await transaction.rollback()


async def _rows(connection: AsyncConnection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """What the commands wrote, in a stable order; database-generated ids aside (an
    outbox row is named by its event's instance and number)."""
    queries = {
        "instance": sa.select(INSTANCES).where(INSTANCES.c.id.in_(ids)).order_by(INSTANCES.c.id),
        "task": sa.select(TASKS).where(TASKS.c.instance_id.in_(ids)).order_by(TASKS.c.id),
        "audit_event": sa.select(*(c for c in EVENTS.c if c.name != "id"))
        .where(EVENTS.c.instance_id.in_(ids))
        .order_by(EVENTS.c.instance_id, EVENTS.c.seq),
        "outbox": sa.select(
            EVENTS.c.instance_id,
            EVENTS.c.seq,
            *(c for c in OUTBOX.c if c.name not in ("id", "event_id")),
        )
        .join(EVENTS, EVENTS.c.id == OUTBOX.c.event_id)
        .where(EVENTS.c.instance_id.in_(ids))
        .order_by(EVENTS.c.instance_id, EVENTS.c.seq),
    }
    return {
        table: [dict(row) for row in (await connection.execute(query)).mappings()]
        for table, query in queries.items()
    }
