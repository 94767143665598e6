"""Read-side queries: instance lists with cursor pagination, and task inboxes."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.engine.state import Actor
from services.core.errors import AlurError
from services.core.instances.models import InstanceRecord, TaskRecord, past_due
from services.core.satkers.service import SatkerDirectory
from services.core.validation import check_json

MAX_LIMIT = 200


class InvalidCursor(AlurError):
    code = "invalid_cursor"
    status = 422
    title = "The cursor is not valid"


@dataclass(frozen=True)
class InstanceFilter:
    sop: str | None = None
    state: str | None = None
    satker: str | None = None
    overdue: bool | None = None
    lane: str | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None


@dataclass(frozen=True)
class InboxRow:
    task: TaskRecord
    instance_title: str
    sop_version: int


def encode_cursor(record: InstanceRecord) -> str:
    raw = orjson.dumps([record.started_at.isoformat(), record.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        started, instance_id = orjson.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        moment = datetime.fromisoformat(started)
        if moment.utcoffset() is None or not isinstance(instance_id, str):
            raise ValueError("not a cursor")
        check_json(instance_id)
        return moment.astimezone(UTC), instance_id
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidCursor("The cursor was not produced by this API; start without one") from exc


def _open_task_exists(*conditions: sa.ColumnElement[bool]) -> sa.Exists:
    return sa.exists().where(
        col(TaskRecord.instance_id) == col(InstanceRecord.id),
        col(TaskRecord.status) == "open",
        *conditions,
    )


async def list_instances(
    session: AsyncSession,
    directory: SatkerDirectory,
    actor: Actor,
    filters: InstanceFilter,
    *,
    cursor: str | None,
    limit: int,
    now: datetime,
) -> tuple[Sequence[InstanceRecord], str | None]:
    """A page of the instances the actor can see, newest first (ties broken by id)."""
    visible = directory.visible_from(actor.satker)
    satkers = visible & {filters.satker} if filters.satker else visible
    query = select(InstanceRecord).where(col(InstanceRecord.satker_id).in_(sorted(satkers)))
    if filters.sop:
        query = query.where(col(InstanceRecord.sop_code) == filters.sop)
    if filters.state:
        query = query.where(col(InstanceRecord.status) == filters.state)
    if filters.started_from:
        query = query.where(col(InstanceRecord.started_at) >= filters.started_from)
    if filters.started_to:
        query = query.where(col(InstanceRecord.started_at) < filters.started_to)
    if filters.lane:
        query = query.where(_open_task_exists(col(TaskRecord.lane) == filters.lane))
    if filters.overdue is not None:
        overdue = sa.or_(
            _open_task_exists(past_due(col(TaskRecord.due_at), now)),
            sa.and_(
                col(InstanceRecord.status) == "active", past_due(col(InstanceRecord.due_at), now)
            ),
        )
        query = query.where(overdue if filters.overdue else sa.not_(overdue))
    if cursor:
        started_at, instance_id = decode_cursor(cursor)
        query = query.where(
            sa.or_(
                col(InstanceRecord.started_at) < started_at,
                sa.and_(
                    col(InstanceRecord.started_at) == started_at,
                    col(InstanceRecord.id) < instance_id,
                ),
            )
        )
    limit = max(1, min(limit, MAX_LIMIT))
    query = query.order_by(col(InstanceRecord.started_at).desc(), col(InstanceRecord.id).desc())
    records = (await session.scalars(query.limit(limit + 1))).all()
    next_cursor = encode_cursor(records[limit - 1]) if len(records) > limit else None
    return records[:limit], next_cursor


async def inbox(
    session: AsyncSession,
    directory: SatkerDirectory,
    actor: Actor,
    *,
    mine: bool,
    sop: str | None,
    lane: str | None,
    limit: int,
    now: datetime,
) -> list[InboxRow]:
    """Open tasks, overdue first, then by due date and age, each with its instance's
    title and SOP version.

    `mine`: the tasks the caller can act on — in its own satker, those in its lanes, the
    external steps it records, and those assigned to it; from a parent court, the
    tasks in that court's own lane in the satkers below it. A role held in someone's
    stead (`actor.acting`) counts as if the caller held it in that role's satker.
    """
    visible = directory.visible_from(actor.satker)
    query = (
        select(TaskRecord, col(InstanceRecord.title), col(InstanceRecord.sop_version))
        .join(InstanceRecord, col(InstanceRecord.id) == col(TaskRecord.instance_id))
        .where(col(TaskRecord.status) == "open", col(TaskRecord.satker_id).in_(sorted(visible)))
    )
    if mine:
        hats = [(actor.roles, actor.satker)]
        hats += [
            (frozenset({grant.role}), grant.satker)
            for grant in actor.acting
            if grant.satker in visible
        ]
        conditions = [
            sa.and_(
                col(TaskRecord.satker_id) == actor.satker, col(TaskRecord.assignee) == actor.sub
            )
        ]
        for roles, satker in hats:
            conditions += _lane_conditions(directory, roles, satker)
        query = query.where(sa.or_(*conditions))
    if sop:
        query = query.where(col(TaskRecord.sop_code) == sop)
    if lane:
        query = query.where(col(TaskRecord.lane) == lane)
    is_overdue = sa.case((past_due(col(TaskRecord.due_at), now), 0), else_=1)
    query = query.order_by(
        is_overdue,
        col(TaskRecord.due_at).is_(None),
        col(TaskRecord.due_at),
        col(TaskRecord.opened_at),
        col(TaskRecord.id),
    )
    rows = await session.execute(query.limit(max(1, min(limit, MAX_LIMIT))))
    return [InboxRow(task, title, version) for task, title, version in rows.all()]


def _lane_conditions(
    directory: SatkerDirectory, roles: frozenset[str], satker: str
) -> list[sa.ColumnElement[bool]]:
    """Open tasks someone holding `roles` in `satker` can act on, by lane."""
    own_roles = sorted(roles)
    conditions = [
        sa.and_(
            col(TaskRecord.satker_id) == satker,
            sa.or_(col(TaskRecord.lane).in_(own_roles), col(TaskRecord.owner).in_(own_roles)),
        )
    ]
    below = sorted(directory.visible_from(satker) - {satker})
    court_lane = directory.get(satker).lane_role
    if below and court_lane and court_lane in roles:
        conditions.append(
            sa.and_(col(TaskRecord.satker_id).in_(below), col(TaskRecord.lane) == court_lane)
        )
    return conditions


async def instance_of_task(session: AsyncSession, task_id: str) -> str | None:
    """The id of the instance a task belongs to (None for an unknown task). Whether the
    caller may see that instance is `service.apply`'s to decide."""
    return await session.scalar(
        sa.select(col(TaskRecord.instance_id)).where(col(TaskRecord.id) == task_id)
    )


async def stranded_automated_tasks(
    session: AsyncSession, *, opened_before: datetime, limit: int = 500
) -> list[tuple[TaskRecord, int]]:
    """Open automated tasks nobody is running, with their instance's SOP version: their
    job message was lost (Redis restarted, enqueue failed after commit). The database is
    the truth, so the sweep sends them again."""
    query = (
        select(TaskRecord, col(InstanceRecord.sop_version))
        .join(InstanceRecord, col(InstanceRecord.id) == col(TaskRecord.instance_id))
        .where(
            col(TaskRecord.status) == "open",
            col(TaskRecord.kind) == "automated",
            col(TaskRecord.flag).is_(None),
            col(TaskRecord.opened_at) < opened_before,
        )
        .order_by(col(TaskRecord.opened_at))
        .limit(limit)
    )
    return [(task, version) for task, version in (await session.execute(query)).all()]


@dataclass(frozen=True)
class WorkloadRow:
    """Open tasks of one (satker, SOP, lane, assignee), counted."""

    satker: str
    sop: str
    lane: str
    assignee: str | None
    open: int
    overdue: int
    escalated: int


async def workload(session: AsyncSession, satkers: set[str], now: datetime) -> list[WorkloadRow]:
    """The open tasks of `satkers`, counted per satker, SOP, lane and assignee, with how
    many are overdue and how many have been escalated."""
    overdue = sa.func.sum(sa.case((past_due(col(TaskRecord.due_at), now), 1), else_=0))
    escalated = sa.func.sum(sa.case((col(TaskRecord.escalation_level) > 0, 1), else_=0))
    group = (
        col(TaskRecord.satker_id),
        col(TaskRecord.sop_code),
        col(TaskRecord.lane),
        col(TaskRecord.assignee),
    )
    query = (
        sa.select(*group, sa.func.count(), overdue, escalated)
        .where(col(TaskRecord.status) == "open", col(TaskRecord.satker_id).in_(sorted(satkers)))
        .group_by(*group)
        .order_by(*group)
    )
    rows = await session.execute(query)
    return [
        WorkloadRow(satker, sop, lane, assignee, int(count), int(late or 0), int(up or 0))
        for satker, sop, lane, assignee, count, late, up in rows.all()
    ]


async def escalated_tasks(session: AsyncSession, satkers: set[str], limit: int) -> list[InboxRow]:
    """Open tasks of `satkers` that have been escalated, highest level and oldest due
    first."""
    query = (
        select(TaskRecord, col(InstanceRecord.title), col(InstanceRecord.sop_version))
        .join(InstanceRecord, col(InstanceRecord.id) == col(TaskRecord.instance_id))
        .where(
            col(TaskRecord.status) == "open",
            col(TaskRecord.satker_id).in_(sorted(satkers)),
            col(TaskRecord.escalation_level) > 0,
        )
        .order_by(
            col(TaskRecord.escalation_level).desc(), col(TaskRecord.due_at), col(TaskRecord.id)
        )
        .limit(limit)
    )
    rows = await session.execute(query)
    return [InboxRow(task, title, version) for task, title, version in rows.all()]
