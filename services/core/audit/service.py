"""Append hash-chained audit events (and their outbox rows); verify a chain.

Each event's hash covers its own fields and the previous event's hash; the instance row
keeps the count and the newest hash, so editing, inserting or deleting any event,
the newest included, breaks verification.

Writing and verifying hash the same canonical form (`event_hash`), and that form is the
one the database gives back: what verification reads is what was hashed. Times are
hashed in UTC to the microsecond (both backends keep the instant, neither the offset);
`data` is JSON with sorted keys (neither backend keeps key order) whose values are
strings, integers, booleans and nulls, which both backends keep exactly (PostgreSQL's
`jsonb` rewrites numbers such as `1e16` or `-0.0`, but event data holds no floats).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.audit.models import AuditEventRecord, FindingRecord, OutboxRecord
from services.core.db import asyncpg_connection
from services.core.instances.models import InstanceRecord
from services.core.pg import pg_json, pg_rows

GENESIS_HASH = "0" * 64
_EVENTS: sa.Table = AuditEventRecord.__table__  # type: ignore[attr-defined]
_OUTBOX: sa.Table = OutboxRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class NewEvent:
    type: str
    actor: str
    actor_name: str | None
    occurred_at: datetime
    task_id: str | None
    data: dict[str, Any]
    # The role the actor held in someone's stead to do this (`ActingRole.audit()`).
    acting_for: dict[str, Any] | None = None


def event_hash(
    *,
    instance_id: str,
    seq: int,
    type: str,
    actor: str,
    actor_name: str | None,
    occurred_at: datetime,
    task_id: str | None,
    data: dict[str, Any] | orjson.Fragment,
    prev_hash: str,
    acting_for: dict[str, Any] | None = None,
) -> str:
    """SHA-256 of the event's canonical form: its fields as JSON with sorted keys, the
    time in UTC (`canonical_time`). `data` may come already serialized that way
    (`canonical_data`): the same bytes, not made twice.

    `acting_for` came later: it is part of the document only when set, so the events
    written before it existed keep their hashes."""
    return _digest(
        instance_id=instance_id,
        seq=seq,
        type=type,
        actor=actor,
        actor_name=actor_name,
        occurred_at=canonical_time(occurred_at),
        task_id=task_id,
        data=data,
        prev_hash=prev_hash,
        acting_for=acting_for,
    )


def canonical_time(moment: datetime) -> str:
    """A time as an event's hash covers it: the instant in UTC, to the microsecond, which
    is what both backends store (an offset given with it is not kept)."""
    if moment.utcoffset() is None:
        raise ValueError("an audit event's time needs a timezone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _digest(
    *,
    occurred_at: str,
    data: dict[str, Any] | orjson.Fragment,
    acting_for: dict[str, Any] | None,
    **fields: Any,
) -> str:
    document = {**fields, "occurred_at": occurred_at, "data": data}
    if acting_for is not None:
        document["acting_for"] = acting_for
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def canonical_data(data: dict[str, Any]) -> orjson.Fragment:
    """An event's data as the JSON its hash covers (sorted keys), ready to be embedded
    verbatim wherever orjson writes it (the database's JSON columns, the hash document)."""
    return orjson.Fragment(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


def chain(
    instance_id: str, start_seq: int, prev_hash: str, events: Sequence[NewEvent]
) -> list[dict[str, Any]]:
    """Rows for `events`, numbered and hashed after the event `start_seq - 1`. A row's
    `data` is its JSON, serialized once for the hash and then written as it is."""
    rows = []
    for offset, event in enumerate(events):
        seq = start_seq + offset
        data = canonical_data(event.data)
        digest = event_hash(
            instance_id=instance_id,
            seq=seq,
            type=event.type,
            actor=event.actor,
            actor_name=event.actor_name,
            occurred_at=event.occurred_at,
            task_id=event.task_id,
            data=data,
            prev_hash=prev_hash,
            acting_for=event.acting_for,
        )
        rows.append(
            {
                "instance_id": instance_id,
                "seq": seq,
                "type": event.type,
                "actor": event.actor,
                "actor_name": event.actor_name,
                "occurred_at": event.occurred_at.astimezone(UTC),
                "task_id": event.task_id,
                "data": data,
                "acting_for": event.acting_for,
                "prev_hash": prev_hash,
                "hash": digest,
            }
        )
        prev_hash = digest
    return rows


def event_body(event: Mapping[Any, Any], satker: str, sop: str) -> dict[str, Any]:
    """The published form of an instance's audit event (webhook bodies; see
    `services.core.webhooks.catalogue`). `event` holds the event's columns;
    `acting_for` is in the body only when it was set."""
    body = {
        "id": f"evt_{event['id']}",
        "type": event["type"],
        "occurred_at": event["occurred_at"].isoformat(),
        "satker": satker,
        "instance_id": event["instance_id"],
        "sop": sop,
        "task_id": event["task_id"],
        "actor": event["actor"],
        "data": event["data"],
    }
    if event.get("acting_for") is not None:
        body["acting_for"] = event["acting_for"]
    return body


async def event_bodies(
    session: AsyncSession, event_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """The published forms of the given events, by event id (for the outbox relay: an
    event's outbox row refers to it rather than holding a second copy of its data)."""
    if not event_ids:
        return {}
    found = (
        await session.execute(
            sa.select(
                *(_EVENTS.c[name] for name in _BODY_COLUMNS),
                _INSTANCES.c.satker_id,
                _INSTANCES.c.sop_code,
            )
            .join(_INSTANCES, _INSTANCES.c.id == _EVENTS.c.instance_id)
            .where(_EVENTS.c.id.in_(event_ids))
        )
    ).mappings()
    return {row["id"]: event_body(row, row["satker_id"], row["sop_code"]) for row in found}


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
_BODY_COLUMNS = (
    "id",
    "instance_id",
    "type",
    "occurred_at",
    "task_id",
    "actor",
    "data",
    "acting_for",
)
_INSTANCES: sa.Table = InstanceRecord.__table__  # type: ignore[attr-defined]
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


@dataclass
class ChainReport:
    instance_id: str
    valid: bool = True
    events: int = 0
    problems: list[str] = field(default_factory=list)


def verify_chain(
    instance_id: str, events: Sequence[AuditEventRecord], event_count: int, head_hash: str
) -> ChainReport:
    report = ChainReport(instance_id=instance_id, events=len(events))
    prev = GENESIS_HASH
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            report.problems.append(f"event #{expected_seq} is missing (found #{event.seq} next)")
        if event.prev_hash != prev:
            report.problems.append(f"event #{event.seq} does not follow the event before it")
        recomputed = event_hash(
            instance_id=event.instance_id,
            seq=event.seq,
            type=event.type,
            actor=event.actor,
            actor_name=event.actor_name,
            occurred_at=event.occurred_at,
            task_id=event.task_id,
            data=event.data,
            prev_hash=event.prev_hash,
            acting_for=event.acting_for,
        )
        if recomputed != event.hash and not _hashed_at_its_given_offset(event):
            report.problems.append(f"event #{event.seq} ({event.type}) was altered")
        prev = event.hash
    if len(events) != event_count or prev != (head_hash or GENESIS_HASH):
        report.problems.append(
            f"the instance records {event_count} events ending in {head_hash[:12]}…, "
            f"the trail holds {len(events)} ending in {prev[:12]}…: events were removed or added"
        )
    report.valid = not report.problems
    return report


# Whole-minute UTC offsets other than UTC itself, the ones a client may give a time in.
_OFFSETS = tuple(timezone(timedelta(minutes=m)) for m in range(-24 * 60 + 1, 24 * 60) if m != 0)


def _hashed_at_its_given_offset(event: AuditEventRecord) -> bool:
    """Whether `event` is one of a start recorded after the fact (`recorded_at`), written
    before times were hashed in UTC: its time was hashed in the offset its client gave
    (`+07:00`), which the database did not keep. Every rendering tried names the
    instant stored, so accepting one hides no edit."""
    if "recorded_at" not in event.data:
        return False
    data = canonical_data(event.data)
    fields: dict[str, Any] = {
        "instance_id": event.instance_id,
        "seq": event.seq,
        "type": event.type,
        "actor": event.actor,
        "actor_name": event.actor_name,
        "task_id": event.task_id,
        "prev_hash": event.prev_hash,
    }
    return any(
        _digest(
            **fields,
            occurred_at=event.occurred_at.astimezone(zone).isoformat(timespec="microseconds"),
            data=data,
            acting_for=event.acting_for,
        )
        == event.hash
        for zone in _OFFSETS
    )


async def verify_stored(
    session: AsyncSession, instance_ids: Sequence[str] | None = None
) -> tuple[int, list[ChainReport]]:
    """Verify the stored trail of each given instance (default: all, oldest first):
    how many were checked, and the report of each that failed."""
    query = select(InstanceRecord).order_by(col(InstanceRecord.started_at))
    if instance_ids is not None:
        query = query.where(col(InstanceRecord.id).in_(instance_ids))
    checked, broken = 0, []
    for record in (await session.scalars(query)).all():
        checked += 1
        report = verify_chain(
            record.id, await events_of(session, record.id), record.event_count, record.head_hash
        )
        if not report.valid:
            broken.append(report)
    return checked, broken


async def record_finding(
    session: AsyncSession,
    *,
    satker_id: str,
    type: str,
    subject: str,
    data: dict[str, Any],
    now: datetime,
) -> FindingRecord:
    """Keep a finding and write its outbox row, in the caller's transaction."""
    finding = FindingRecord(
        satker_id=satker_id, type=type, subject=subject, occurred_at=now, data=data
    )
    session.add(finding)
    await session.flush()
    session.add(
        OutboxRecord(
            event_id=None,
            satker_id=satker_id,
            type=type,
            payload={
                "id": f"fnd_{finding.id}",
                "type": type,
                "occurred_at": now.isoformat(),
                "satker": satker_id,
                "subject": subject,
                "data": data,
            },
            created_at=now,
        )
    )
    await session.flush()
    return finding
