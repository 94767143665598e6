"""Use cases of running SOPs: start an instance, apply a command, read them back.

Every change runs in the caller's transaction: the instance row is updated only if
its `version` is still the one the command was decided against (so of two concurrent
transitions exactly one wins), tasks are written, and the audit events with their
outbox rows are appended. Jobs to enqueue are returned, to be sent after commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.audit import events as audit_events
from services.core.audit import hashchain
from services.core.audit.hashchain import ChainReport, NewEvent
from services.core.catalog import service as catalog
from services.core.engine.calendar import WorkingCalendar, deadlines
from services.core.engine.definition import Role, SopDefinition, TimeStandard
from services.core.engine.errors import InstanceNotFound, LaneForbidden, NotAssignee
from services.core.engine.machine import decide
from services.core.engine.state import (
    ADMIN_ROLE,
    ActingRole,
    Actor,
    Command,
    Decision,
    EnqueueJob,
    InstanceState,
    Start,
    TaskState,
)
from services.core.errors import AlurError, Conflict
from services.core.instances import repository
from services.core.instances.jobs import QueuedJob
from services.core.instances.models import IdempotencyRecord, InstanceRecord
from services.core.instances.repository import InstanceRow
from services.core.satkers.service import (
    SatkerDirectory,
    SatkerNotFound,
)
from services.core.shared import Services

# A backdated start may not lie in the future beyond clock skew, nor before the court
# kept its procedures electronically (older paper is not worth running deadlines for:
# such a start would be escalated through every level at once).
_CLOCK_SKEW = timedelta(minutes=5)
EARLIEST_START = datetime(2000, 1, 1, tzinfo=UTC)


class VersionMismatch(AlurError):
    code = "version_mismatch"
    status = 412
    title = "The instance changed since you read it"


class ConcurrentModification(Conflict):
    code = "concurrent_modification"
    title = "Another change to this instance won"


class IdempotencyKeyReused(AlurError):
    code = "idempotency_key_reused"
    status = 422
    title = "The Idempotency-Key was used for a different request"


class BackdatingForbidden(AlurError):
    code = "backdating_forbidden"
    status = 403
    title = "Only an admin may record a procedure begun earlier"


class InvalidStartedAt(AlurError):
    code = "invalid_started_at"
    status = 422
    title = "started_at is not valid"


@dataclass(frozen=True)
class InstanceView:
    """An instance as read back: its row, its tasks (as state) and its definition."""

    record: InstanceRow
    state: InstanceState
    definition: SopDefinition


@dataclass(frozen=True)
class Applied:
    view: InstanceView
    jobs: tuple[EnqueueJob, ...]
    replayed: dict[str, Any] | None = None

    def queued_jobs(self) -> list[QueuedJob]:
        """The jobs to send once the change has committed."""
        return [
            QueuedJob(instance_id=self.view.record.id, task_id=job.task_id, job=job.job)
            for job in self.jobs
        ]


def _deadline_function(
    calendar: WorkingCalendar,
) -> Callable[[TimeStandard, datetime], tuple[datetime | None, datetime | None]]:
    def compute(
        standard: TimeStandard, opened_at: datetime
    ) -> tuple[datetime | None, datetime | None]:
        result = deadlines(standard, opened_at, calendar)
        return result.warn_at, result.due_at

    return compute


def _jsonable(value: Any) -> Any:
    """Plain JSON data: dataclasses become objects, datetimes ISO 8601 text, enums their
    values, tuples lists (orjson does all of it in C: this runs for every audit event)."""
    return orjson.loads(orjson.dumps(value))


# Values that are JSON as they are.
_PLAIN = frozenset({str, int, float, bool})


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _field_names(effect: Any) -> tuple[str, ...]:
    kind: type[Any] = type(effect)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(item.name for item in dataclasses.fields(kind))
    return names


def decision_events(
    decision: Decision,
    before: InstanceState | None,
    actor: Actor,
    at: datetime,
    acting: ActingRole | None = None,
) -> list[NewEvent]:
    """One audit event per effect, with the task or instance state before and after,
    and the role the actor held in someone's stead if the decision needed it."""
    acting_for = acting.audit() if acting is not None else None
    events = []
    # Effects of one decision share task states (an overdue task is also escalated):
    # each state is converted once. Keyed by identity; `decision` keeps them alive.
    converted: dict[int, Any] = {}

    def jsonable(task: TaskState | None) -> Any:
        if id(task) not in converted:
            converted[id(task)] = _jsonable(task)
        return converted[id(task)]

    for effect in decision.effects:
        data: dict[str, Any] = {}
        task_id = None
        for name in _field_names(effect):
            value = getattr(effect, name)
            if isinstance(value, TaskState):
                task_id = value.id
                data["before"] = jsonable(before.task(value.id) if before else None)
                data["after"] = jsonable(value)
            elif value is None or type(value) in _PLAIN:
                data[name] = value
            else:
                data[name] = _jsonable(value)
        if task_id is None:
            task_id = data.get("task_id")
            data["before"] = {"status": before.status.value} if before else None
            data["after"] = {"status": decision.state.status.value}
        events.append(
            NewEvent(
                type=effect.event_type,
                actor=actor.sub,
                actor_name=actor.name,
                occurred_at=at,
                task_id=task_id,
                data=data,
                acting_for=acting_for,
            )
        )
    return events


# Refusals for want of a role, which a role held in someone's stead may lift.
_ROLE_REFUSALS = (LaneForbidden, NotAssignee)


def _decide_as(
    definition: SopDefinition,
    snapshot: InstanceState | None,
    command_for: Callable[[Actor], Command],
    actor: Actor,
    directory: SatkerDirectory,
    target: str,
    now: datetime,
    *,
    deadline_function: Callable[[TimeStandard, datetime], tuple[datetime | None, datetime | None]],
    roles: Mapping[str, Role],
) -> tuple[Decision, ActingRole | None]:
    """Decide as the actor, with its own roles (`actor.roles`, already those it has on
    `target`); if they do not allow the command, with one of its acting roles on
    `target` added, which the decision then names (the audit's `acting_for`). A person
    who may act in their own right acts in their own right."""
    try:
        return decide(
            definition, snapshot, command_for(actor), now,
            deadlines=deadline_function, roles=roles,
        ), None  # fmt: skip
    except _ROLE_REFUSALS as refused:
        for grant in actor.acting:
            added = directory.effective_roles(frozenset({grant.role}), grant.satker, target)
            if not added - actor.roles:
                continue
            stand_in = dataclasses.replace(actor, roles=actor.roles | added)
            try:
                return decide(
                    definition, snapshot, command_for(stand_in), now,
                    deadlines=deadline_function, roles=roles,
                ), grant  # fmt: skip
            except _ROLE_REFUSALS:
                continue
        raise refused from None


def _jobs(decision: Decision) -> tuple[EnqueueJob, ...]:
    return tuple(effect for effect in decision.effects if isinstance(effect, EnqueueJob))


async def _visible_instance(
    session: AsyncSession, directory: SatkerDirectory, actor: Actor, instance_id: str
) -> tuple[InstanceRow, tuple[TaskState, ...]]:
    found = await repository.load(session, instance_id)
    # Another satker's instance is reported exactly like a missing one. The worker acts
    # for every satker (it runs their automated steps and deadlines).
    if found is None or (
        not actor.is_worker and found[0].satker_id not in directory.visible_from(actor.satker)
    ):
        raise InstanceNotFound()
    return found


def request_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def claim_idempotency_key(
    session: AsyncSession,
    *,
    satker_id: str,
    principal: str,
    key: str,
    body_hash: str,
    now: datetime,
) -> dict[str, Any] | None:
    """Reserve `key` for this request, or return the first request's response to replay.

    The reservation is a row written before any work: a concurrent request with the same
    key blocks on it and, once the first commits, replays its response.
    """
    existing = await repository.get_idempotency(session, satker_id, principal, key)
    if existing is None:
        try:
            async with session.begin_nested():
                session.add(
                    IdempotencyRecord(
                        satker_id=satker_id,
                        principal=principal,
                        key=key,
                        request_hash=body_hash,
                        status_code=0,
                        response={},
                        created_at=now,
                    )
                )
            return None
        except IntegrityError:
            existing = await repository.get_idempotency(session, satker_id, principal, key)
            assert existing is not None
    if existing.request_hash != body_hash:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} was first used with a different request body"
        )
    if existing.status_code == 0:
        raise ConcurrentModification(f"A request with Idempotency-Key {key!r} is in progress")
    return existing.response


async def store_idempotent_response(
    session: AsyncSession,
    *,
    satker_id: str,
    principal: str,
    key: str,
    status_code: int,
    response: dict[str, Any],
) -> None:
    record = await repository.get_idempotency(session, satker_id, principal, key)
    assert record is not None
    record.status_code = status_code
    record.response = response
    await session.flush()


async def start_instance(
    session: AsyncSession,
    services: Services,
    actor: Actor,
    *,
    sop: str,
    title: str,
    entry_point: str | None,
    context: dict[str, Any],
    satker: str | None,
    started_at: datetime | None,
    now: datetime,
) -> Applied:
    target = satker or actor.satker
    directory = await services.directory(session, actor.satker, target)
    if target not in directory.visible_from(actor.satker):
        raise SatkerNotFound(f"No satker {target!r} among the ones you can act for")
    if started_at is not None:
        if ADMIN_ROLE not in actor.roles:
            raise BackdatingForbidden("started_at may only be given by an admin")
        if started_at.utcoffset() is None:
            raise InvalidStartedAt("started_at needs a timezone offset")
        if started_at < EARLIEST_START:
            raise InvalidStartedAt(
                f"started_at {started_at.isoformat()} is before {EARLIEST_START:%Y-%m-%d}, "
                "the earliest start Alur records"
            )
        if started_at > now + _CLOCK_SKEW:
            raise InvalidStartedAt(
                f"started_at {started_at.isoformat()} lies in the future (now is "
                f"{now.isoformat(timespec='seconds')}; {_CLOCK_SKEW.seconds // 60} minutes "
                "of clock skew are allowed)"
            )
        # Kept as the instant, in UTC like every stored time: the offset a client wrote
        # it in is not stored, so nothing derived from it (the audit events) may hold it.
        started_at = started_at.astimezone(UTC)
    start_time = started_at or now
    definition = await catalog.get_definition(session, sop)
    calendar = await services.calendars.get(session, directory.get(target))
    own = dataclasses.replace(
        actor, roles=directory.effective_roles(actor.roles, actor.satker, target)
    )
    instance_id, ids = services.new_id(), services.new_ids()
    decision, acting_for = _decide_as(
        definition,
        None,
        lambda as_actor: Start(
            actor=as_actor,
            instance_id=instance_id,
            entry_point=entry_point,
            new_task_ids=ids,
            satker=target,
        ),
        own,
        directory,
        target,
        start_time,
        deadline_function=_deadline_function(calendar),
        roles=services.roles,
    )
    state = decision.state
    events = decision_events(decision, None, actor, start_time, acting_for)
    if started_at is not None:
        for event in events:
            event.data["recorded_at"] = now.isoformat()
    rows = hashchain.chain(state.id, 1, hashchain.GENESIS_HASH, events)
    record = InstanceRow(
        id=state.id,
        satker_id=state.satker,
        sop_code=state.sop_code,
        sop_version=state.sop_version,
        title=title,
        context=context,
        status=state.status.value,
        version=state.version,
        started_at=state.started_at,
        ended_at=state.ended_at,
        warn_at=state.warn_at,
        due_at=state.due_at,
        warned_at=state.warned_at,
        escalation_level=state.escalation_level,
        next_check_at=state.next_check_at,
        created_by=actor.sub,
        event_count=rows[-1]["seq"],
        head_hash=rows[-1]["hash"],
    )
    await repository.insert(session, definition, record, state)
    await audit_events.insert(session, rows, satkers={state.id: state.satker})
    return Applied(InstanceView(record, state, definition), _jobs(decision))


async def apply(
    session: AsyncSession,
    services: Services,
    actor: Actor,
    instance_id: str,
    make_command: Callable[[InstanceView, Actor, list[str]], Command],
    *,
    if_match: int | None,
    now: datetime,
) -> Applied:
    """Decide one command against the instance as stored, and store the result.

    `make_command` builds the command from the instance as read (its state and
    definition), the actor with the roles it holds there, and ids for new tasks."""
    directory = await services.directory(session, actor.satker)
    record, tasks = await _visible_instance(session, directory, actor, instance_id)
    if if_match is not None and record.version != if_match:
        raise VersionMismatch(
            f"If-Match names version {if_match}, the instance is at version {record.version}",
            extra={"current_version": record.version},
        )
    state = repository.instance_state(record, tasks)
    definition = await services.definition(session, record.sop_code, record.sop_version)
    calendar = await services.calendars.get(session, directory.get(record.satker_id))
    own = dataclasses.replace(
        actor,
        satker=record.satker_id if actor.is_worker else actor.satker,
        roles=directory.effective_roles(actor.roles, actor.satker, record.satker_id),
    )
    ids = services.new_ids()
    decision, acting_for = _decide_as(
        definition,
        state,
        lambda as_actor: make_command(InstanceView(record, state, definition), as_actor, ids),
        own,
        directory,
        record.satker_id,
        now,
        deadline_function=_deadline_function(calendar),
        roles=services.roles,
    )
    rows = hashchain.chain(
        record.id,
        record.event_count + 1,
        record.head_hash,
        decision_events(decision, state, actor, now, acting_for),
    )
    event_count = rows[-1]["seq"] if rows else record.event_count
    head_hash = rows[-1]["hash"] if rows else record.head_hash
    if not await repository.save(
        session,
        definition,
        state,
        decision.state,
        events=rows,
        event_count=event_count,
        head_hash=head_hash,
    ):
        raise ConcurrentModification(
            "The instance was changed by another request at the same time; reload and retry"
        )
    after = decision.state
    # The row as stored now.
    record = dataclasses.replace(
        record, **repository.instance_changes(after, event_count, head_hash)
    )
    return Applied(InstanceView(record, after, definition), _jobs(decision))


async def get_view(
    session: AsyncSession, services: Services, actor: Actor, instance_id: str
) -> InstanceView:
    directory = await services.directory(session, actor.satker)
    record, tasks = await _visible_instance(session, directory, actor, instance_id)
    definition = await services.definition(session, record.sop_code, record.sop_version)
    return InstanceView(record, repository.instance_state(record, tasks), definition)


async def events(
    session: AsyncSession, services: Services, actor: Actor, instance_id: str
) -> Sequence[Any]:
    directory = await services.directory(session, actor.satker)
    record, _ = await _visible_instance(session, directory, actor, instance_id)
    return await audit_events.events_of(session, record.id)


async def verify(
    session: AsyncSession, services: Services, actor: Actor, instance_id: str
) -> ChainReport:
    directory = await services.directory(session, actor.satker)
    record, _ = await _visible_instance(session, directory, actor, instance_id)
    return hashchain.verify_chain(
        record.id,
        await audit_events.events_of(session, record.id),
        record.event_count,
        record.head_hash,
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
        report = hashchain.verify_chain(
            record.id,
            await audit_events.events_of(session, record.id),
            record.event_count,
            record.head_hash,
        )
        if not report.valid:
            broken.append(report)
    return checked, broken
