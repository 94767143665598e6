"""The notification relay: committed outbox rows become messages, one per person and
channel, in the transaction that marks the rows notified.

Like the webhook relay (`services.core.webhooks_out.relay`) it reads only committed
rows, claims them `FOR UPDATE SKIP LOCKED` on PostgreSQL (several workers share the
backlog), and inserts `(outbox_id, username, channel)` `ON CONFLICT DO NOTHING`: a run
repeated after a crash, or by another worker, makes no message twice. It keeps its own
mark (`outbox.notified_at`), so webhooks and notifications go each at their own pace.

Who is told (`recipients`):
- a task opened: the holders of its lane in the instance's satker (the owner lane for
  an external step), acting officials included, and its assignee;
- a task assigned: the new assignee;
- due soon, overdue, flagged: the assignee, else the lane's holders;
- an escalation: the people it reached (`to_people`, resolved when it happened);
- the court's services (backups, websites, renewals): the holders of
  `ALUR_NOTIFY__OPERATIONS_ROLES` in the satker.
A lane nobody holds, in a satker that has people at all, is reported (`role.unstaffed`,
cause `notification`) rather than skipped in silence.

When: e-mail at once; chat in the satker's next working hour; a due-soon item of a
person who takes the daily digest at the digest hour of the next working day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.audit.models import OutboxRecord
from services.core.engine.calendar import WorkingCalendar
from services.core.engine.definition import StepKind
from services.core.instances.models import InstanceRecord
from services.core.notifications import texts
from services.core.notifications.kinds import (
    CHAT_CHANNELS,
    DIGEST_KIND,
    EVENT_KINDS,
    KIND_ROLES,
    OPERATIONS_KINDS,
)
from services.core.notifications.models import NotificationRecord
from services.core.people import acting
from services.core.people.models import PersonRecord
from services.core.settings import NotifySettings
from services.core.shared import Services
from services.core.webhooks_out.relay import outbox_bodies

log = structlog.get_logger(__name__)

BATCH_SIZE = 500

_OUTBOX: sa.Table = OutboxRecord.__table__  # type: ignore[attr-defined]
_NOTIFICATION: sa.Table = NotificationRecord.__table__  # type: ignore[attr-defined]
_INSTANCES: sa.Table = InstanceRecord.__table__  # type: ignore[attr-defined]
_PEOPLE: sa.Table = PersonRecord.__table__  # type: ignore[attr-defined]


@dataclass
class RelayReport:
    rows: int = 0
    messages: int = 0
    unstaffed: int = 0


@dataclass
class _Event:
    """One outbox row that tells someone, with what the message needs."""

    outbox_id: int
    satker: str
    type: str
    kind: str
    body: Mapping[str, Any]
    usernames: list[str] = field(default_factory=list)
    message: texts.Message | None = None
    task_id: str | None = None
    instance_id: str | None = None


def _insert_ignoring_duplicates(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_NOTIFICATION).on_conflict_do_nothing(
        index_elements=["outbox_id", "username", "channel"]
    )


def instance_link(settings: NotifySettings, instance_id: str) -> str:
    return f"{settings.base_url.rstrip('/')}/v1/instances/{instance_id}"


async def relay_batch(
    session: AsyncSession,
    services: Services,
    settings: NotifySettings,
    now: datetime,
    *,
    batch_size: int = BATCH_SIZE,
) -> RelayReport:
    """Make the messages of up to `batch_size` outbox rows; the caller commits."""
    rows = (
        await session.execute(
            sa.select(
                _OUTBOX.c.id,
                _OUTBOX.c.event_id,
                _OUTBOX.c.satker_id,
                _OUTBOX.c.type,
                _OUTBOX.c.payload,
            )
            .where(_OUTBOX.c.notified_at.is_(None))
            .order_by(_OUTBOX.c.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return RelayReport()
    telling = [row for row in rows if row.type in EVENT_KINDS]
    report = RelayReport(rows=len(rows))
    if telling:
        bodies = await outbox_bodies(session, telling)
        events = [
            _Event(row.id, row.satker_id, row.type, EVENT_KINDS[row.type], bodies[row.id])
            for row in telling
        ]
        report.unstaffed = await _resolve(session, services, settings, events, now)
        messages = await _messages(session, services, settings, events, now)
        if messages:
            await session.execute(_insert_ignoring_duplicates(session), messages)
        report.messages = len(messages)
    await session.execute(
        sa.update(_OUTBOX).where(_OUTBOX.c.id.in_([row.id for row in rows])).values(notified_at=now)
    )
    return report


async def _resolve(
    session: AsyncSession,
    services: Services,
    settings: NotifySettings,
    events: Sequence[_Event],
    now: datetime,
) -> int:
    """Fill in each event's recipients and message; returns the unstaffed roles reported."""
    directory = await services.directory(session, *{event.satker for event in events})
    instance_ids = {str(e.body["instance_id"]) for e in events if e.body.get("instance_id")}
    instances = {
        row.id: row
        for row in (
            await session.execute(
                sa.select(
                    _INSTANCES.c.id,
                    _INSTANCES.c.title,
                    _INSTANCES.c.sop_code,
                    _INSTANCES.c.sop_version,
                ).where(_INSTANCES.c.id.in_(sorted(instance_ids)))
            )
        ).all()
    }
    # Which roles of which satkers are asked for: lanes, then the operations roles.
    lanes: dict[int, str] = {}
    for event in events:
        if event.kind in OPERATIONS_KINDS:
            continue
        instance = instances.get(str(event.body.get("instance_id")))
        if instance is None:
            continue
        try:
            await _prepare_task_event(
                session, services, settings, directory, event, instance, lanes
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            lanes.pop(event.outbox_id, None)
            _not_understood(event, exc)
    wanted = {(events_satker, lane) for events_satker, lane in _lane_wants(events, lanes)}
    wanted |= {
        (event.satker, role)
        for event in events
        if event.kind in OPERATIONS_KINDS
        for role in _operations_roles(settings, event.kind)
    }
    holders = await acting.role_holders(session, directory, wanted, now)
    staffed_satkers = await _satkers_with_people(session, {satker for satker, _ in wanted})
    unstaffed = 0
    for event in events:
        roles: list[str] = []
        if event.kind in OPERATIONS_KINDS:
            satker = directory.get(event.satker) if event.satker in directory else None
            try:
                data = event.body["data"]
                event.message = texts.operations_message(
                    event.kind,
                    data,
                    satker_name=satker.name if satker else event.satker,
                    timezone=satker.timezone if satker else "Asia/Jakarta",
                    link=_operations_link(settings, data),
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                _not_understood(event, exc)
                continue
            roles = _operations_roles(settings, event.kind)
        elif event.outbox_id in lanes and not _assignee_only(event):
            roles = [lanes[event.outbox_id]]
        for role in roles:
            found = holders.get((event.satker, role), [])
            event.usernames += [holder.username for holder in found]
            if not found and event.satker in staffed_satkers:
                await acting.report_unstaffed(
                    session,
                    satker=event.satker,
                    role=role,
                    cause="notification",
                    data={
                        "instance_id": event.instance_id,
                        "sop": event.body.get("sop"),
                        "task_id": event.task_id,
                        "level": None,
                    },
                    now=now,
                )
                unstaffed += 1
        event.usernames = list(dict.fromkeys(event.usernames))
    return unstaffed


def _operations_roles(settings: NotifySettings, kind: str) -> list[str]:
    return list(KIND_ROLES.get(kind, settings.operations_roles))


def _operations_link(settings: NotifySettings, data: Mapping[str, Any]) -> str | None:
    base = settings.base_url.rstrip("/")
    if data.get("instance_id"):
        return instance_link(settings, str(data["instance_id"]))
    if data.get("review_id"):
        return f"{base}/v1/sop-reviews/{data['review_id']}"
    return None


async def _prepare_task_event(
    session: AsyncSession,
    services: Services,
    settings: NotifySettings,
    directory: Any,
    event: _Event,
    instance: Any,
    lanes: dict[int, str],
) -> None:
    """The message of an event about a task or an instance, its named people, and the
    lane whose holders are told (in `lanes`)."""
    definition = await services.definition(session, instance.sop_code, instance.sop_version)
    event.instance_id = instance.id
    if event.type.startswith("instance."):
        task = None
        step = definition.step(definition.entry_points[0])
    else:
        task = event.body["data"]["after"]
        event.task_id = task["id"]
        step = definition.step(task["step_id"])
        lane = step.owner if step.kind == StepKind.EXTERNAL and step.owner else step.lane
        if step.kind != StepKind.AUTOMATED or event.kind == "flagged":
            lanes[event.outbox_id] = lane
    satker = directory.get(event.satker) if event.satker in directory else None
    timezone = satker.timezone if satker else "Asia/Jakarta"
    due = task.get("due_at") if task else event.body["data"].get("due_at")
    facts = texts.TaskFacts(
        sop_number=definition.number,
        sop_title=definition.title,
        step_number=step.number,
        activity=step.activity,
        instance_title=instance.title,
        due_at=datetime.fromisoformat(due) if due else None,
        timezone=timezone,
        link=instance_link(settings, instance.id),
    )
    if event.type == "instance.escalated":
        facts = replace(facts, step_number=0, activity="(seluruh prosedur)")
    event.message = texts.task_message(event.kind, facts, event.body["data"])
    event.usernames = _named_people(event, task)


def _not_understood(event: _Event, exc: Exception) -> None:
    """An outbox row whose body lacks what its message needs (written by an older or
    foreign writer): nobody is told of it, and the relay goes on."""
    event.message, event.usernames = None, []
    log.warning(
        "notification: event not understood, nobody told",
        outbox_id=event.outbox_id,
        event_type=event.type,
        error=f"{type(exc).__name__}: {exc}",
    )


def _lane_wants(events: Iterable[_Event], lanes: Mapping[int, str]) -> Iterable[tuple[str, str]]:
    for event in events:
        if event.outbox_id in lanes and not _assignee_only(event):
            yield event.satker, lanes[event.outbox_id]


def _assignee_only(event: _Event) -> bool:
    """Whether only the named people are told (an assignee is known, or it was said
    whom an escalation reached)."""
    if event.kind in ("escalated", "task_assigned"):
        return True
    if event.kind == "task_opened":
        return False
    after = event.body["data"].get("after") or {}
    return bool(after.get("assignee"))


def _named_people(event: _Event, task: Mapping[str, Any] | None) -> list[str]:
    if event.kind == "escalated":
        return [str(p["username"]) for p in event.body["data"].get("to_people") or []]
    assignee = task.get("assignee") if task else None
    return [str(assignee)] if assignee else []


async def _satkers_with_people(session: AsyncSession, satkers: set[str]) -> set[str]:
    if not satkers:
        return set()
    found = await session.execute(
        sa.select(_PEOPLE.c.satker_id)
        .where(_PEOPLE.c.satker_id.in_(sorted(satkers)), _PEOPLE.c.active.is_(True))
        .distinct()
    )
    return set(found.scalars())


def _address(person: Any, channel: str) -> str | None:
    column = {"email": "email", "whatsapp": "whatsapp"}.get(channel, "telegram_chat_id")
    value = getattr(person, column)
    return None if value is None else str(value)


def digest_time(calendar: WorkingCalendar, timezone: str, hour: int, now: datetime) -> datetime:
    """The first working instant at or after the next `hour` o'clock local time."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    at = datetime.combine(local.date(), time(hour), tzinfo=zone)
    if at <= local:
        at = datetime.combine(local.date() + timedelta(days=1), time(hour), tzinfo=zone)
    return calendar.next_working_instant(at)


async def _messages(
    session: AsyncSession,
    services: Services,
    settings: NotifySettings,
    events: Sequence[_Event],
    now: datetime,
) -> list[dict[str, Any]]:
    usernames = sorted({name for event in events for name in event.usernames})
    if not usernames:
        return []
    people = {
        row.username: row
        for row in (
            await session.execute(
                sa.select(
                    _PEOPLE.c.username,
                    _PEOPLE.c.satker_id,
                    _PEOPLE.c.email,
                    _PEOPLE.c.whatsapp,
                    _PEOPLE.c.telegram_chat_id,
                    _PEOPLE.c.notify_channels,
                    _PEOPLE.c.notify_digest,
                ).where(_PEOPLE.c.username.in_(usernames), _PEOPLE.c.active.is_(True))
            )
        ).all()
    }
    directory = await services.directory(session, *{event.satker for event in events})
    calendars: dict[str, tuple[WorkingCalendar, str]] = {}
    messages: list[dict[str, Any]] = []
    for event in events:
        if event.message is None:
            continue
        if event.satker not in calendars and event.satker in directory:
            satker = directory.get(event.satker)
            calendar = await services.calendars.get(session, satker)
            calendars[event.satker] = (calendar, satker.timezone)
        for username in event.usernames:
            person = people.get(username)
            if person is None:
                continue
            chosen = (person.notify_channels or {}).get(event.kind, settings.default_channels)
            for channel in chosen:
                address = _address(person, channel)
                if not address:
                    continue
                due = now
                digest = event.kind == DIGEST_KIND and bool(person.notify_digest)
                place = calendars.get(event.satker)
                if place is not None and digest:
                    due = digest_time(place[0], place[1], settings.digest_hour, now)
                elif place is not None and channel in CHAT_CHANNELS:
                    due = place[0].next_working_instant(now)
                messages.append(
                    {
                        "outbox_id": event.outbox_id,
                        "satker_id": event.satker,
                        "username": username,
                        "channel": channel,
                        "kind": event.kind,
                        "event_type": event.type,
                        "instance_id": event.instance_id,
                        "task_id": event.task_id,
                        "subject": event.message.subject[:300],
                        "body": event.message.text,
                        "address": address,
                        "digest": digest,
                        "status": "queued",
                        "attempts": 0,
                        "next_attempt_at": due,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
    return messages
