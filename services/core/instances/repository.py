"""Rows of instances and tasks, mapped to and from the engine's state."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.engine.definition import SopDefinition, StepKind
from services.core.engine.state import InstanceState, InstanceStatus, TaskState, TaskStatus
from services.core.instances.models import IdempotencyRecord, InstanceRecord, TaskRecord

_TASK_FIELDS = [f.name for f in dataclasses.fields(TaskState)]


async def get_instance(session: AsyncSession, instance_id: str) -> InstanceRecord | None:
    return await session.get(InstanceRecord, instance_id)


async def tasks_of(session: AsyncSession, instance_id: str) -> list[TaskRecord]:
    query = (
        select(TaskRecord)
        .where(col(TaskRecord.instance_id) == instance_id)
        .order_by(col(TaskRecord.opened_at), col(TaskRecord.id))
    )
    return list((await session.scalars(query)).all())


def task_state(record: TaskRecord) -> TaskState:
    return TaskState(
        id=record.id,
        step_id=record.step_id,
        lane=record.lane,
        kind=StepKind(record.kind),
        status=TaskStatus(record.status),
        opened_at=record.opened_at,
        warn_at=record.warn_at,
        due_at=record.due_at,
        assignee=record.assignee,
        claimed_at=record.claimed_at,
        completed_at=record.completed_at,
        completed_by=record.completed_by,
        outcome=record.outcome,
        note=record.note,
        evidence=tuple(record.evidence),
        warned_at=record.warned_at,
        escalation_level=record.escalation_level,
        next_check_at=record.next_check_at,
        flag=record.flag,
    )


def instance_state(record: InstanceRecord, tasks: Sequence[TaskRecord]) -> InstanceState:
    return InstanceState(
        id=record.id,
        sop_code=record.sop_code,
        sop_version=record.sop_version,
        satker=record.satker_id,
        status=InstanceStatus(record.status),
        version=record.version,
        started_at=record.started_at,
        ended_at=record.ended_at,
        warn_at=record.warn_at,
        due_at=record.due_at,
        warned_at=record.warned_at,
        escalation_level=record.escalation_level,
        next_check_at=record.next_check_at,
        tasks=tuple(task_state(task) for task in tasks),
    )


def task_values(task: TaskState) -> dict[str, Any]:
    values = {name: getattr(task, name) for name in _TASK_FIELDS}
    values["kind"] = task.kind.value
    values["status"] = task.status.value
    values["evidence"] = list(task.evidence)
    return values


async def write_tasks(
    session: AsyncSession,
    definition: SopDefinition,
    before: InstanceState | None,
    after: InstanceState,
) -> None:
    """Insert the tasks `after` opened and update the ones it changed."""
    old = {task.id: task for task in before.tasks} if before else {}
    new_rows = []
    for task in after.tasks:
        previous = old.get(task.id)
        if previous is None:
            new_rows.append(
                {
                    **task_values(task),
                    "instance_id": after.id,
                    "satker_id": after.satker,
                    "sop_code": after.sop_code,
                    "owner": definition.step(task.step_id).owner,
                }
            )
        elif previous != task:
            changed = {
                name: value
                for name, value in task_values(task).items()
                if value != task_values(previous)[name]
            }
            await session.execute(
                sa.update(TaskRecord).where(col(TaskRecord.id) == task.id).values(**changed)
            )
    if new_rows:
        await session.execute(sa.insert(TaskRecord.__table__), new_rows)  # type: ignore[attr-defined]


async def update_instance(
    session: AsyncSession,
    state: InstanceState,
    *,
    expected_version: int,
    event_count: int,
    head_hash: str,
) -> bool:
    """Write `state` only if nobody changed the instance since `expected_version`."""
    result = await session.execute(
        sa.update(InstanceRecord)
        .where(col(InstanceRecord.id) == state.id, col(InstanceRecord.version) == expected_version)
        .values(
            status=state.status.value,
            version=state.version,
            ended_at=state.ended_at,
            warned_at=state.warned_at,
            escalation_level=state.escalation_level,
            next_check_at=state.next_check_at,
            event_count=event_count,
            head_hash=head_hash,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get_idempotency(
    session: AsyncSession, satker_id: str, principal: str, key: str
) -> IdempotencyRecord | None:
    return await session.get(IdempotencyRecord, (satker_id, principal, key))


def cursor_filter(started_at: datetime, instance_id: str) -> sa.ColumnElement[bool]:
    """Rows after the cursor in the (started_at desc, id desc) order."""
    return sa.tuple_(col(InstanceRecord.started_at), col(InstanceRecord.id)) < sa.tuple_(
        sa.literal(started_at, InstanceRecord.__table__.c.started_at.type),  # type: ignore[attr-defined]
        sa.literal(instance_id),
    )
