"""Acting on a stored inbound message: a `sipp-upgrade` notice starts SOP 09 in each
target satker; a `correlation` message records the open external step it names.

A message is processed once: its row is locked and only a `received` one is handled.
What the sender got wrong (a bad body, no matching step) ends as `failed` with the
reason; anything else (the database going away, a concurrent change to the instance)
raises, so the job retries and the message stays `received` until it succeeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.engine.definition import StepKind
from services.core.engine.state import Actor, InstanceState, RecordExternal, TaskStatus
from services.core.errors import AlurError
from services.core.instances import repository as instance_repository
from services.core.instances import service as instances
from services.core.instances.jobs import QueuedJob
from services.core.instances.service import ConcurrentModification
from services.core.shared import Services
from services.core.webhooks_in import repository
from services.core.webhooks_in.models import (
    HookSourceRecord,
    InboundMessageRecord,
    SippUpgradeRecord,
)
from services.core.webhooks_in.service import HookKind, MessageStatus

UPGRADE_SOP = "upgrade-sipp"
SATGAS_ROLE = "satgas_sipp"


class SippUpgradeNotice(BaseModel):
    """SATGAS SIPP (or the high court) announcing a SIPP version."""

    version: str = Field(min_length=1, max_length=64, examples=["5.4.0"])
    released_at: datetime | date
    notes: str = Field(default="", max_length=4000)
    satkers: list[str] | None = Field(
        default=None, description="A subset of the source's satkers; default all of them."
    )


class CorrelationNotice(BaseModel):
    """An outside party reporting that it did an external step of a running instance."""

    correlation_key: str = Field(
        min_length=1, max_length=64, description="The id of the instance (`/v1/instances/{id}`)."
    )
    step: str = Field(min_length=1, max_length=64, examples=["kirim_ke_ma"])
    note: str | None = Field(default=None, max_length=4000)
    evidence: list[str] = Field(default_factory=list, max_length=20)
    outcome: str | None = Field(default=None, max_length=64)


class Rejected(Exception):
    """The message cannot be acted on as sent; it ends `failed` with this reason."""


@dataclass
class Handled:
    status: MessageStatus
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    jobs: list[QueuedJob] = field(default_factory=list)


def hook_actor(source: HookSourceRecord, role: str, satker: str) -> Actor:
    return Actor(
        sub=f"hook:{source.name}",
        roles=frozenset({role}),
        satker=satker,
        name=source.description or None,
    )


def _reason(exc: AlurError) -> str:
    return exc.detail


def _invalid(exc: ValidationError) -> Rejected:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors()
    )
    return Rejected(f"the body is not valid: {problems}")


async def process_message(
    session: AsyncSession, services: Services, message_id: str, now: datetime
) -> Handled | None:
    """Process one stored message; None when it is gone or was processed already."""
    message = await repository.lock_message(session, message_id)
    if message is None or message.status != MessageStatus.RECEIVED:
        return None
    source = await repository.get_source(session, message.source)
    try:
        if source is None or source.deleted_at is not None:
            handled = Handled(MessageStatus.IGNORED, error="the source was deleted")
        elif source.kind == HookKind.SIPP_UPGRADE:
            handled = await _sipp_upgrade(session, services, source, message, now)
        elif source.kind == HookKind.CORRELATION:
            handled = await _correlate(session, services, source, message, now)
        else:
            raise Rejected(f"the source's kind {source.kind!r} is not handled")
    except Rejected as exc:
        handled = Handled(MessageStatus.FAILED, error=str(exc))
    _finish(message, handled.status, result=handled.result, error=handled.error, now=now)
    await session.flush()
    return handled


async def give_up(session: AsyncSession, message_id: str, error: str, now: datetime) -> None:
    """Mark a message that kept failing to process as `failed`, for a person to look at."""
    message = await repository.lock_message(session, message_id)
    if message is not None and message.status == MessageStatus.RECEIVED:
        _finish(message, MessageStatus.FAILED, result=None, error=error, now=now)
        await session.flush()


def _finish(
    message: InboundMessageRecord,
    status: MessageStatus,
    *,
    result: dict[str, Any] | None,
    error: str | None,
    now: datetime,
) -> None:
    message.status = status.value
    message.result = result
    message.error = error
    message.processed_at = now


# --- sipp-upgrade -----------------------------------------------------------------------


async def _sipp_upgrade(
    session: AsyncSession,
    services: Services,
    source: HookSourceRecord,
    message: InboundMessageRecord,
    now: datetime,
) -> Handled:
    try:
        notice = SippUpgradeNotice.model_validate(message.body)
    except ValidationError as exc:
        raise _invalid(exc) from None
    version = notice.version.strip()
    targets = list(dict.fromkeys(notice.satkers if notice.satkers is not None else source.satkers))
    outside = sorted(set(targets) - set(source.satkers))
    if outside:
        raise Rejected(
            f"satkers {', '.join(outside)} are not targets of source {source.name!r} "
            f"({', '.join(source.satkers)})"
        )
    started: dict[str, str] = {}
    existing: dict[str, str] = {}
    errors: dict[str, str] = {}
    handled = Handled(MessageStatus.PROCESSED)
    for satker in targets:
        known = await repository.sipp_upgrade(session, satker, version)
        if known is not None:
            existing[satker] = known.instance_id
            continue
        try:
            # One savepoint per satker: a refusal in one court leaves the others started.
            async with session.begin_nested():
                instance_id, jobs = await _start_upgrade(
                    session, services, source, message, notice, version, satker, now
                )
        except IntegrityError:
            # A concurrent notice of the same version started this satker's upgrade first.
            known = await repository.sipp_upgrade(session, satker, version)
            if known is None:
                raise
            existing[satker] = known.instance_id
        except AlurError as exc:
            if isinstance(exc, ConcurrentModification):
                raise
            errors[satker] = _reason(exc)
        else:
            started[satker] = instance_id
            handled.jobs += jobs
    handled.result = {"version": version, "started": started, "existing": existing}
    if errors:
        handled.result["errors"] = errors
        handled.status = MessageStatus.FAILED
        handled.error = "; ".join(f"{satker}: {reason}" for satker, reason in errors.items())
    elif not started:
        # Every satker already has this version's upgrade: a repeated notice.
        handled.status = MessageStatus.IGNORED
    return handled


async def _start_upgrade(
    session: AsyncSession,
    services: Services,
    source: HookSourceRecord,
    message: InboundMessageRecord,
    notice: SippUpgradeNotice,
    version: str,
    satker: str,
    now: datetime,
) -> tuple[str, list[QueuedJob]]:
    """Start SOP 09 as SATGAS SIPP (its entry step is SATGAS SIPP's own lane) and record
    that first, external step from the notice, leaving the backup to staf TI."""
    actor = hook_actor(source, SATGAS_ROLE, satker)
    started = await instances.start_instance(
        session,
        services,
        actor,
        sop=UPGRADE_SOP,
        title=f"Upgrade SIPP {version}",
        entry_point=None,
        context={
            "sipp_version": version,
            "released_at": notice.released_at.isoformat(),
            "notes": notice.notes,
            "hook_source": source.name,
            "inbound_message": message.id,
        },
        satker=satker,
        started_at=None,
        now=now,
    )
    definition = started.view.definition
    entry = next(
        (
            task
            for task in started.view.state.open_tasks
            if definition.step(task.step_id).kind is StepKind.EXTERNAL
        ),
        None,
    )
    if entry is None:
        raise Rejected(f"SOP {UPGRADE_SOP} no longer starts at an external step")
    note = f"SIPP {version} dirilis {notice.released_at.isoformat()}"
    if notice.notes.strip():
        note += f": {notice.notes.strip()}"
    recorded = await instances.apply(
        session,
        services,
        actor,
        started.view.record.id,
        lambda _state, acting, ids: RecordExternal(
            actor=acting,
            task_id=entry.id,
            note=note,
            evidence=(f"inbound:{message.id}",),
            new_task_ids=ids,
        ),
        if_match=None,
        now=now,
    )
    session.add(
        SippUpgradeRecord(
            satker_id=satker,
            version=version,
            instance_id=started.view.record.id,
            inbound_message_id=message.id,
            created_at=now,
        )
    )
    await session.flush()
    return started.view.record.id, started.queued_jobs() + recorded.queued_jobs()


# --- correlation ------------------------------------------------------------------------


async def _correlate(
    session: AsyncSession,
    services: Services,
    source: HookSourceRecord,
    message: InboundMessageRecord,
    now: datetime,
) -> Handled:
    try:
        notice = CorrelationNotice.model_validate(message.body)
    except ValidationError as exc:
        raise _invalid(exc) from None
    found = await instance_repository.load(session, notice.correlation_key)
    if found is None or found[0].satker_id not in source.satkers:
        raise Rejected(
            f"no instance {notice.correlation_key!r} in the satkers of source {source.name!r}"
        )
    record, tasks = found
    state = instance_repository.instance_state(record, tasks)
    if not state.is_active:
        raise Rejected(f"instance {record.id} is {state.status.value}, not running")
    task = next(
        (
            t
            for t in state.tasks
            if t.status is TaskStatus.OPEN
            and t.step_id == notice.step
            and t.kind is StepKind.EXTERNAL
        ),
        None,
    )
    if task is None:
        raise Rejected(
            f"instance {record.id} has no open external step {notice.step!r} "
            f"(open steps: {', '.join(_open_steps(state)) or 'none'})"
        )
    actor = hook_actor(source, task.lane, record.satker_id)
    evidence = (f"inbound:{message.id}", *notice.evidence)
    try:
        async with session.begin_nested():
            applied = await instances.apply(
                session,
                services,
                actor,
                record.id,
                lambda _state, acting, ids: RecordExternal(
                    actor=acting,
                    task_id=task.id,
                    note=notice.note,
                    evidence=evidence,
                    outcome=notice.outcome,
                    new_task_ids=ids,
                ),
                if_match=None,
                now=now,
            )
    except ConcurrentModification:
        raise
    except AlurError as exc:
        raise Rejected(f"instance {record.id}, step {notice.step!r}: {_reason(exc)}") from None
    return Handled(
        MessageStatus.PROCESSED,
        result={
            "instance_id": record.id,
            "task_id": task.id,
            "step": task.step_id,
            "current_steps": _open_steps(applied.view.state),
        },
        jobs=applied.queued_jobs(),
    )


def _open_steps(state: InstanceState) -> Sequence[str]:
    return [t.step_id for t in state.open_tasks]
