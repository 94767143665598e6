"""Audit events in the database: appended with their outbox rows in the caller's
transaction (through asyncpg in one statement on PostgreSQL), and read back in order.
What is hashed, and how, is `services.core.audit.hashchain`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.audit.models import AuditEventRecord, OutboxRecord
from services.core.db import asyncpg_connection
from services.core.pg import pg_json, pg_rows

_EVENTS: sa.Table = AuditEventRecord.__table__  # type: ignore[attr-defined]
_OUTBOX: sa.Table = OutboxRecord.__table__  # type: ignore[attr-defined]


async def insert(
    session: AsyncSession,
    rows: Sequence[dict[str, Any]],
    *,
    satkers: Mapping[str, str],
) -> None:
    """Insert chained event rows (from `chain`) and one outbox row for each.

    `satkers` maps each instance id of the rows to its satker. The outbox row refers to
    its event: the relay composes the published body from it (`event_bodies`).
    """
    if not rows:
        return
    pg = await asyncpg_connection(session)
    if pg is not None:
        for start in range(0, len(rows), _PG_BATCH):
            batch = rows[start : start + _PG_BATCH]
            await pg.execute(_PG_INSERT, *pg_event_arguments(batch, satkers))
        return
    result = await session.execute(
        # Core inserts on the tables: the ORM's bulk path costs more than the database.
        sa.insert(_EVENTS).returning(_EVENTS.c.id, sort_by_parameter_order=True),
        list(rows),
    )
    ids = list(result.scalars())
    await session.execute(
        sa.insert(_OUTBOX),
        [
            {
                "event_id": event_id,
                "satker_id": satkers[row["instance_id"]],
                "type": row["type"],
                "payload": sa.null(),  # SQL NULL (a bare None would be stored as JSON null)
                "created_at": row["occurred_at"],
            }
            for event_id, row in zip(ids, rows, strict=True)
        ],
    )


_EVENT_COLUMNS = (
    "instance_id",
    "seq",
    "type",
    "actor",
    "actor_name",
    "occurred_at",
    "task_id",
    "data",
    "acting_for",
    "prev_hash",
    "hash",
)
# Which satker each instance of a batch of events belongs to.
_SATKER_ROWS = sa.Table(
    "event_satker",
    sa.MetaData(),
    sa.Column("instance_id", _EVENTS.c.instance_id.type),
    sa.Column("satker_id", _OUTBOX.c.satker_id.type),
)
# Rows per statement: bounded, so that one statement's arrays stay a few megabytes.
_PG_BATCH = 5000


def pg_events_cte(start: int, guard: str = "") -> str:
    """Common table expressions `event` and `event_outbox` inserting the events given by
    `pg_event_arguments` (parameters `$start` and `$start + 1`) and their outbox rows,
    in one statement. `guard`, an SQL condition, can make both no-ops."""
    where = f"WHERE {guard}" if guard else ""
    satkers = pg_rows(_SATKER_ROWS, ("instance_id", "satker_id"), start + 1)
    return f"""
event AS (
    INSERT INTO audit_event ({", ".join(_EVENT_COLUMNS)})
    SELECT {", ".join(_EVENT_COLUMNS)} FROM {pg_rows(_EVENTS, _EVENT_COLUMNS, start)} {where}
    RETURNING id, instance_id, type, occurred_at
),
event_outbox AS (
    INSERT INTO outbox (event_id, satker_id, type, created_at)
    SELECT event.id, u.satker_id, event.type, event.occurred_at
    FROM event JOIN {satkers} ON u.instance_id = event.instance_id
    ORDER BY event.id
)"""


def pg_event_arguments(rows: Sequence[Mapping[str, Any]], satkers: Mapping[str, str]) -> list[str]:
    """The parameters of `pg_events_cte` for chained event rows (from `chain`)."""
    instances = {row["instance_id"] for row in rows}
    return [
        pg_json(rows),
        pg_json([{"instance_id": i, "satker_id": satkers[i]} for i in instances]),
    ]


_PG_INSERT = f"WITH {pg_events_cte(1)} SELECT count(*) FROM event"


async def events_of(session: AsyncSession, instance_id: str) -> Sequence[AuditEventRecord]:
    query = (
        select(AuditEventRecord)
        .where(col(AuditEventRecord.instance_id) == instance_id)
        .order_by(col(AuditEventRecord.seq))
    )
    return (await session.scalars(query)).all()
