"""Rows of instances and tasks, mapped to and from the engine's state.

Every transition reads an instance with its tasks and writes them back, so these few
statements are the hot path of the service. Each exists twice, with one meaning:
through SQLAlchemy Core for every backend, and on PostgreSQL as plain SQL sent on the
asyncpg connection under the session's own transaction (`asyncpg_connection`). The
second skips SQLAlchemy's statement building, caching and result processing, which
cost about 0.3 ms of CPU per statement against 0.06 ms for asyncpg alone; several rows
go in one statement as one JSON parameter (`services.core.pg`).

Why two paths rather than one: SQLite needs the Core statements, and on PostgreSQL
they cost an API transition about three times the CPU of the plain ones (10 ms
against 3.5, `bench/transitions.py` with `ALUR_DATABASE__PLAIN_SQL=false`), a third
of the throughput. So both stay, and "one meaning" is tested rather than assumed: on
PostgreSQL the instance, transition, sweep and audit tests run on both paths (the
`both_paths` marker), and `tests/integration/test_storage_paths.py` runs the same
commands through each and compares every row written, hashes included.

Nothing here goes through the ORM's identity map: instances and tasks are read as
plain rows and states, so no stale mapped object outlives a write made here.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.audit import events as audit_events
from services.core.db import asyncpg_connection
from services.core.engine.definition import SopDefinition, StepKind
from services.core.engine.state import InstanceState, InstanceStatus, TaskState, TaskStatus
from services.core.instances.models import IdempotencyRecord, InstanceRecord, TaskRecord
from services.core.pg import pg_json, pg_rows

INSTANCES: sa.Table = InstanceRecord.__table__  # type: ignore[attr-defined]
TASKS: sa.Table = TaskRecord.__table__  # type: ignore[attr-defined]

_TASK_FIELDS = tuple(f.name for f in dataclasses.fields(TaskState))
# What a task row holds beyond its state: where it belongs.
_TASK_PLACE = ("instance_id", "satker_id", "sop_code", "owner")
# The instance columns a change of state writes (the rest is fixed at the start).
_INSTANCE_CHANGES = (
    "status",
    "version",
    "ended_at",
    "warned_at",
    "escalation_level",
    "next_check_at",
    "event_count",
    "head_hash",
)


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """An instance row as stored (the columns of `InstanceRecord`), without its tasks."""

    id: str
    satker_id: str
    sop_code: str
    sop_version: int
    title: str
    context: dict[str, Any]
    status: str
    version: int
    started_at: datetime
    ended_at: datetime | None
    warn_at: datetime | None
    due_at: datetime | None
    warned_at: datetime | None
    escalation_level: int
    next_check_at: datetime | None
    created_by: str
    event_count: int
    head_hash: str


_INSTANCE_COLUMNS = tuple(f.name for f in dataclasses.fields(InstanceRow))
assert set(_INSTANCE_COLUMNS) == set(INSTANCES.c.keys()), "InstanceRow must match the table"
assert set(_TASK_FIELDS + _TASK_PLACE) == set(TASKS.c.keys()), "TaskState must match the table"


def task_state(row: Mapping[Any, Any]) -> TaskState:
    return TaskState(
        id=row["id"],
        step_id=row["step_id"],
        lane=row["lane"],
        kind=StepKind(row["kind"]),
        status=TaskStatus(row["status"]),
        opened_at=row["opened_at"],
        warn_at=row["warn_at"],
        due_at=row["due_at"],
        assignee=row["assignee"],
        claimed_at=row["claimed_at"],
        completed_at=row["completed_at"],
        completed_by=row["completed_by"],
        outcome=row["outcome"],
        note=row["note"],
        evidence=tuple(row["evidence"]),
        warned_at=row["warned_at"],
        escalation_level=row["escalation_level"],
        next_check_at=row["next_check_at"],
        flag=row["flag"],
    )


def instance_state(row: InstanceRow, tasks: Sequence[TaskState]) -> InstanceState:
    return InstanceState(
        id=row.id,
        sop_code=row.sop_code,
        sop_version=row.sop_version,
        satker=row.satker_id,
        status=InstanceStatus(row.status),
        version=row.version,
        started_at=row.started_at,
        ended_at=row.ended_at,
        warn_at=row.warn_at,
        due_at=row.due_at,
        warned_at=row.warned_at,
        escalation_level=row.escalation_level,
        next_check_at=row.next_check_at,
        tasks=tuple(tasks),
    )


def task_values(task: TaskState) -> dict[str, Any]:
    values = {name: getattr(task, name) for name in _TASK_FIELDS}
    values["kind"] = task.kind.value
    values["status"] = task.status.value
    values["evidence"] = list(task.evidence)
    return values


def _new_task_rows(
    definition: SopDefinition, before: InstanceState | None, after: InstanceState
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows of the tasks `after` opened, rows of the tasks it changed)."""
    old = {task.id: task for task in before.tasks} if before else {}
    opened, changed = [], []
    for task in after.tasks:
        previous = old.get(task.id)
        if previous is None:
            opened.append(
                {
                    **task_values(task),
                    "instance_id": after.id,
                    "satker_id": after.satker,
                    "sop_code": after.sop_code,
                    "owner": definition.step(task.step_id).owner,
                }
            )
        elif previous != task:
            changed.append(task_values(task))
    return opened, changed


def instance_changes(state: InstanceState, event_count: int, head_hash: str) -> dict[str, Any]:
    """The instance columns a change of state writes, by name."""
    return {
        "status": state.status.value,
        "version": state.version,
        "ended_at": state.ended_at,
        "warned_at": state.warned_at,
        "escalation_level": state.escalation_level,
        "next_check_at": state.next_check_at,
        "event_count": event_count,
        "head_hash": head_hash,
    }


# --- the public operations --------------------------------------------------------------


async def load(
    session: AsyncSession, instance_id: str
) -> tuple[InstanceRow, tuple[TaskState, ...]] | None:
    """The instance and its tasks (oldest first), or None."""
    pg = await asyncpg_connection(session)
    if pg is not None:
        row = await pg.fetchrow(_PG_LOAD, instance_id)
        if row is None:
            return None
        instance = InstanceRow(*(row[name] for name in _INSTANCE_COLUMNS))
        return instance, tuple(task_state(task) for task in row["tasks"])
    found = (await session.execute(_SELECT_INSTANCE, {"id": instance_id})).mappings().first()
    if found is None:
        return None
    tasks = (await session.execute(_SELECT_TASKS, {"id": instance_id})).mappings().all()
    return InstanceRow(**found), tuple(task_state(task) for task in tasks)


async def insert(
    session: AsyncSession, definition: SopDefinition, row: InstanceRow, state: InstanceState
) -> None:
    """Store a new instance (`row`) with the tasks its first state opened."""
    opened, _ = _new_task_rows(definition, None, state)
    pg = await asyncpg_connection(session)
    if pg is not None:
        values = dataclasses.asdict(row)
        values["context"] = pg_json(row.context)
        await pg.execute(_PG_INSERT_INSTANCE, *(values[name] for name in _INSTANCE_COLUMNS))
        await _pg_insert_tasks(pg, opened)
        return
    await session.execute(sa.insert(INSTANCES), [dataclasses.asdict(row)])
    if opened:
        await session.execute(sa.insert(TASKS), opened)


async def save(
    session: AsyncSession,
    definition: SopDefinition,
    before: InstanceState,
    after: InstanceState,
    *,
    events: Sequence[dict[str, Any]],
    event_count: int,
    head_hash: str,
) -> bool:
    """Write `after` over `before`, and append `events` (chained rows from `hashchain.chain`,
    with their outbox rows): False, and nothing written, if the instance is no longer at
    `before.version`, i.e. another change won. The instance row's `event_count` and
    `head_hash` seal the chain with its newest event."""
    opened, changed = _new_task_rows(definition, before, after)
    changes = instance_changes(after, event_count, head_hash)
    satkers = {after.id: after.satker}
    pg = await asyncpg_connection(session)
    if pg is not None:
        # One statement, one round trip: every part is a no-op unless the instance
        # update found the expected version.
        written = await pg.fetchval(
            _PG_SAVE,
            after.id,
            before.version,
            *(changes[name] for name in _INSTANCE_CHANGES),
            pg_json(changed),
            pg_json(opened),
            *audit_events.pg_event_arguments(events, satkers),
        )
        return bool(written)
    update = _versioned_instance_update(
        _INSTANCE_CHANGES, [{"id": after.id, "expected_version": before.version, **changes}]
    )
    if not (await session.execute(update)).first():
        return False
    if changed:
        await session.execute(_UPDATE_TASK, [{"b_id": row["id"], **row} for row in changed])
    if opened:
        await session.execute(sa.insert(TASKS), opened)
    await audit_events.insert(session, events, satkers=satkers)
    return True


async def load_due(
    session: AsyncSession, now: datetime, limit: int
) -> tuple[list[tuple[InstanceRow, tuple[TaskState, ...]]], bool]:
    """For the deadline sweep: active instances with a check due at `now` (their own, or
    one of their open tasks'), locked for this transaction, each with its due open tasks;
    at most `limit` of each kind. True second: a limit was reached (more may be due).

    On PostgreSQL the rows are locked `FOR UPDATE SKIP LOCKED`, so parallel sweeps take
    different instances; SQLite serialises writers anyway.
    """
    pg = await asyncpg_connection(session)
    if pg is not None:
        candidates = await pg.fetch(DUE_CANDIDATES, now, limit)
        full = any(
            sum(1 for row in candidates if row["source"] == source) >= limit
            for source in ("task", "instance")
        )
        ids = sorted({row["id"] for row in candidates})
        if not ids:
            return [], full
        instances = await pg.fetch(_PG_LOCK_INSTANCES, ids)
        tasks = await pg.fetch(_PG_DUE_TASKS, [row["id"] for row in instances], now)
        # Selected in the dataclass' order: positional is the cheap way in.
        return _by_instance((InstanceRow(*row) for row in instances), tasks), full
    task_ids = (await session.execute(_DUE_TASK_INSTANCES, {"now": now, "limit": limit})).all()
    instance_ids = (await session.execute(_DUE_INSTANCES, {"now": now, "limit": limit})).all()
    full = len(task_ids) >= limit or len(instance_ids) >= limit
    ids = sorted({row[0] for row in (*task_ids, *instance_ids)})
    if not ids:
        return [], full
    found = (await session.execute(_LOCK_INSTANCES, {"ids": ids})).mappings().all()
    task_rows = (
        (await session.execute(_DUE_TASKS, {"ids": [row["id"] for row in found], "now": now}))
        .mappings()
        .all()
    )
    return _by_instance((InstanceRow(**row) for row in found), task_rows), full


def _by_instance(
    instances: Iterable[InstanceRow], tasks: Sequence[Mapping[Any, Any]]
) -> list[tuple[InstanceRow, tuple[TaskState, ...]]]:
    grouped: dict[str, list[TaskState]] = defaultdict(list)
    for row in tasks:
        grouped[row["instance_id"]].append(task_state(row))
    return [(instance, tuple(grouped.get(instance.id, ()))) for instance in instances]


# What the sweep changes on an instance and on a task.
WATCH_INSTANCE = (
    "version",
    "warned_at",
    "escalation_level",
    "next_check_at",
    "event_count",
    "head_hash",
)
WATCH_TASK = ("warned_at", "escalation_level", "next_check_at")


async def save_watch(
    session: AsyncSession,
    instances: Sequence[Mapping[str, Any]],
    tasks: Sequence[Mapping[str, Any]],
) -> int:
    """Write the sweep's notices in bulk: `instances` rows hold `id`, `expected_version`
    and `WATCH_INSTANCE`, `tasks` rows `id` and `WATCH_TASK`. An instance no longer at its
    expected version is left alone; returns how many instances were written."""
    if not instances:
        return 0
    pg = await asyncpg_connection(session)
    if pg is not None:
        status = await pg.execute(
            _PG_WATCH_INSTANCES,
            pg_json(instances),
        )
        if tasks:
            await pg.execute(_PG_WATCH_TASKS, pg_json(tasks))
        return int(status.rsplit(" ", 1)[1])
    written = 0
    for start in range(0, len(instances), _UPDATE_SLICE):
        update = _versioned_instance_update(
            WATCH_INSTANCE, instances[start : start + _UPDATE_SLICE]
        )
        written += len((await session.execute(update)).all())
    if tasks:
        await session.execute(_WATCH_TASK, [{"b_id": row["id"], **row} for row in tasks])
    return written


async def get_idempotency(
    session: AsyncSession, satker_id: str, principal: str, key: str
) -> IdempotencyRecord | None:
    return await session.get(IdempotencyRecord, (satker_id, principal, key))


def cursor_filter(started_at: datetime, instance_id: str) -> sa.ColumnElement[bool]:
    """Rows after the cursor in the (started_at desc, id desc) order."""
    return sa.tuple_(INSTANCES.c.started_at, INSTANCES.c.id) < sa.tuple_(
        sa.literal(started_at, INSTANCES.c.started_at.type),
        sa.literal(instance_id),
    )


# --- SQLAlchemy Core, every backend -------------------------------------------------------

_SELECT_INSTANCE = sa.select(*(INSTANCES.c[name] for name in _INSTANCE_COLUMNS)).where(
    INSTANCES.c.id == sa.bindparam("id")
)
_SELECT_TASKS = (
    sa.select(TASKS)
    .where(TASKS.c.instance_id == sa.bindparam("id"))
    .order_by(TASKS.c.opened_at, TASKS.c.id)
)


def _versioned_instance_update(
    columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> sa.Update:
    """One statement setting `columns` of each instance of `rows` (by `id`) that is still
    at the row's `expected_version`, returning the ids it wrote. Counted so, not by an
    executemany's row count, which asyncpg does not report; and a plain UPDATE, not one
    behind a WITH, which Python's sqlite3 would run outside the transaction."""

    def by_instance(name: str, column: sa.Column[Any]) -> sa.Case[Any]:
        values = {row["id"]: sa.literal(row[name], column.type) for row in rows}
        return sa.case(values, value=INSTANCES.c.id)

    return (
        sa.update(INSTANCES)
        .where(INSTANCES.c.id.in_([row["id"] for row in rows]))
        .where(INSTANCES.c.version == by_instance("expected_version", INSTANCES.c.version))
        .values({name: by_instance(name, INSTANCES.c[name]) for name in columns})
        .returning(INSTANCES.c.id)
    )


# Instances per versioned update: 2 parameters per column each, within the backends' limits.
_UPDATE_SLICE = 1000
_DUE_TASK_INSTANCES = (
    sa.select(TASKS.c.instance_id)
    .where(TASKS.c.next_check_at <= sa.bindparam("now"), TASKS.c.status == TaskStatus.OPEN.value)
    .order_by(TASKS.c.next_check_at)
    .limit(sa.bindparam("limit"))
)
_DUE_INSTANCES = (
    sa.select(INSTANCES.c.id)
    .where(
        INSTANCES.c.next_check_at <= sa.bindparam("now"),
        INSTANCES.c.status == InstanceStatus.ACTIVE.value,
    )
    .limit(sa.bindparam("limit"))
)
_LOCK_INSTANCES = (
    sa.select(*(INSTANCES.c[name] for name in _INSTANCE_COLUMNS))
    .where(
        INSTANCES.c.id.in_(sa.bindparam("ids", expanding=True)),
        INSTANCES.c.status == InstanceStatus.ACTIVE.value,
    )
    .order_by(INSTANCES.c.id)
    .with_for_update(skip_locked=True)
)
_DUE_TASKS = sa.select(TASKS).where(
    TASKS.c.instance_id.in_(sa.bindparam("ids", expanding=True)),
    TASKS.c.status == TaskStatus.OPEN.value,
    TASKS.c.next_check_at <= sa.bindparam("now"),
)
_WATCH_TASK = (
    sa.update(TASKS)
    .where(TASKS.c.id == sa.bindparam("b_id"))
    .values({name: sa.bindparam(name) for name in WATCH_TASK})
)
_UPDATE_TASK = (
    sa.update(TASKS)
    .where(TASKS.c.id == sa.bindparam("b_id"))
    .values({name: sa.bindparam(name) for name in _TASK_FIELDS if name != "id"})
)


# --- asyncpg, PostgreSQL ------------------------------------------------------------------


# One round trip: the tasks come along as an array of `task` rows (asyncpg decodes the
# composite type, fields by name).
_PG_LOAD = (
    f"SELECT {', '.join(f'i.{name}' for name in _INSTANCE_COLUMNS)}, "
    "ARRAY(SELECT t FROM task AS t WHERE t.instance_id = i.id ORDER BY t.opened_at, t.id) "
    "AS tasks FROM instance AS i WHERE i.id = $1"
)
_PG_INSERT_INSTANCE = (
    f"INSERT INTO instance ({', '.join(_INSTANCE_COLUMNS)}) VALUES "
    f"({', '.join(f'${i + 1}' for i in range(len(_INSTANCE_COLUMNS)))})"
)
_TASK_INSERT_COLUMNS = _TASK_FIELDS + _TASK_PLACE
# `save` on PostgreSQL: parameters $1 (id), $2 (expected version), the instance's new
# values, then the changed tasks, the opened tasks, the events and their satkers.
_SAVED = "EXISTS (SELECT FROM saved_instance)"
_INSTANCE_SET = ", ".join(f"{name} = ${i + 3}" for i, name in enumerate(_INSTANCE_CHANGES))
_TASK_SET = ", ".join(f"{name} = u.{name}" for name in _TASK_FIELDS if name != "id")
_CHANGED_AT = 3 + len(_INSTANCE_CHANGES)
_PG_SAVE = f"""
WITH saved_instance AS (
    UPDATE instance SET {_INSTANCE_SET} WHERE id = $1 AND version = $2 RETURNING id
),
changed_task AS (
    UPDATE task SET {_TASK_SET}
    FROM {pg_rows(TASKS, _TASK_FIELDS, _CHANGED_AT)}
    WHERE task.instance_id = $1 AND task.id = u.id AND {_SAVED}
),
opened_task AS (
    INSERT INTO task ({", ".join(_TASK_INSERT_COLUMNS)})
    SELECT {", ".join(_TASK_INSERT_COLUMNS)}
    FROM {pg_rows(TASKS, _TASK_INSERT_COLUMNS, _CHANGED_AT + 1)}
    WHERE {_SAVED}
),
{audit_events.pg_events_cte(_CHANGED_AT + 2, guard=_SAVED)}
SELECT count(*) FROM saved_instance
"""
_PG_INSERT_TASKS = (
    f"INSERT INTO task ({', '.join(_TASK_INSERT_COLUMNS)}) "
    f"SELECT {', '.join(_TASK_INSERT_COLUMNS)} FROM {pg_rows(TASKS, _TASK_INSERT_COLUMNS, 1)}"
)


async def _pg_insert_tasks(pg: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        await pg.execute(_PG_INSERT_TASKS, pg_json(rows))


# Due rows are locked as they are picked (SKIP LOCKED): sweeps running at once pick
# different ones instead of the same first `limit`.
DUE_CANDIDATES = """
WITH due_task AS (
    SELECT instance_id FROM task WHERE next_check_at <= $1 AND status = 'open'
    ORDER BY next_check_at LIMIT $2 FOR UPDATE SKIP LOCKED
), due_instance AS (
    SELECT id FROM instance WHERE next_check_at <= $1 AND status = 'active'
    LIMIT $2 FOR UPDATE SKIP LOCKED
)
SELECT instance_id AS id, 'task' AS source FROM due_task
UNION ALL
SELECT id, 'instance' FROM due_instance
"""
_PG_LOCK_INSTANCES = (
    f"SELECT {', '.join(_INSTANCE_COLUMNS)} FROM instance "
    "WHERE id = ANY($1::varchar[]) AND status = 'active' ORDER BY id FOR UPDATE SKIP LOCKED"
)
_PG_DUE_TASKS = (
    f"SELECT {', '.join(TASKS.c.keys())} FROM task "
    "WHERE instance_id = ANY($1::varchar[]) AND status = 'open' AND next_check_at <= $2"
)
_WATCHED_INSTANCE = sa.Table(
    "watched_instance",
    sa.MetaData(),
    sa.Column("id", INSTANCES.c.id.type),
    sa.Column("expected_version", INSTANCES.c.version.type),
    *(sa.Column(name, INSTANCES.c[name].type) for name in WATCH_INSTANCE),
)
_PG_WATCH_INSTANCES = (
    "UPDATE instance SET "
    + ", ".join(f"{name} = u.{name}" for name in WATCH_INSTANCE)
    + f" FROM {pg_rows(_WATCHED_INSTANCE, _WATCHED_INSTANCE.c.keys(), 1)}"
    + " WHERE instance.id = u.id AND instance.version = u.expected_version"
)
_PG_WATCH_TASKS = (
    "UPDATE task SET "
    + ", ".join(f"{name} = u.{name}" for name in WATCH_TASK)
    + f" FROM {pg_rows(TASKS, ('id', *WATCH_TASK), 1)} WHERE task.id = u.id"
)


async def save_migration(
    session: AsyncSession,
    definition: SopDefinition,
    before: InstanceState,
    after: InstanceState,
    *,
    events: Sequence[dict[str, Any]],
    event_count: int,
    head_hash: str,
) -> bool:
    """Write a migration (`services.core.engine.migration`): the instance on its new
    version, each task on its new step, lane, kind and owner, and the audit events; False,
    with nothing written, if the instance is no longer at `before.version`. Rare and
    small, so through SQLAlchemy Core on every backend."""
    updated = await session.execute(
        sa.update(INSTANCES)
        .where(INSTANCES.c.id == after.id, INSTANCES.c.version == before.version)
        .values(
            sop_version=after.sop_version,
            version=after.version,
            event_count=event_count,
            head_hash=head_hash,
        )
        .returning(INSTANCES.c.id)
    )
    if updated.first() is None:
        return False
    steps = {step.id: step for step in definition.steps}
    old = {task.id: task for task in before.tasks}
    moved = [
        {
            "b_id": task.id,
            "step_id": task.step_id,
            "lane": task.lane,
            "kind": task.kind.value,
            "owner": steps[task.step_id].owner if task.step_id in steps else None,
        }
        for task in after.tasks
        if (old[task.id].step_id, old[task.id].lane, old[task.id].kind)
        != (task.step_id, task.lane, task.kind)
    ]
    if moved:
        await session.execute(
            sa.update(TASKS)
            .where(TASKS.c.id == sa.bindparam("b_id"))
            .values(
                step_id=sa.bindparam("step_id"),
                lane=sa.bindparam("lane"),
                kind=sa.bindparam("kind"),
                owner=sa.bindparam("owner"),
            ),
            moved,
        )
    await audit_events.insert(session, events, satkers={after.id: after.satker})
    return True
