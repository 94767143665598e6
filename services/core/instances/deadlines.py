"""The deadline sweep: due-soon warnings, overdue notices and escalation, in bulk.

One sweep reads only rows whose `next_check_at` has passed (a partial index), so its
cost follows what is due, not what is open. The instance rows it touches are locked
(`FOR UPDATE SKIP LOCKED` on PostgreSQL), so parallel sweeps split the work and each
notice fires once; SQLite serialises writers and the version-checked update refuses a
batch that raced a transition (it is retried on the next sweep). Every notice is an
audit event with its outbox row, through the same engine as every other change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import overload

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.audit import events as audit_events
from services.core.audit import hashchain
from services.core.audit.hashchain import NewEvent
from services.core.engine.calendar import WorkingCalendar
from services.core.engine.definition import TimeStandard
from services.core.engine.durations import Duration
from services.core.engine.errors import DomainError
from services.core.engine.machine import decide
from services.core.engine.state import Actor, Escalate, InstanceState
from services.core.instances import repository
from services.core.instances.service import decision_events
from services.core.people import acting
from services.core.satkers.service import SatkerDirectory
from services.core.shared import Services

log = structlog.get_logger(__name__)

# Tasks (and instances) one sweep batch takes at most: the instance rows it locks stay
# locked for one batch only.
BATCH_SIZE = 1000


class SweepRaced(RuntimeError):
    """A transition changed an instance during the sweep; the batch is retried."""


@dataclass
class SweepReport:
    tasks: int = 0
    instances: int = 0
    events: int = 0
    event_types: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # The batch was full: more may be due right now.
    more: bool = False
    # Escalations that reached nobody (reported as `role.unstaffed`).
    unstaffed: int = 0


class Thresholds(Sequence[datetime]):
    """When each escalation level fires: level 1 at the due date, level n at `multiples[n-1]`
    times the standard's longest time after opening, in working time.

    Computed on demand: the engine usually needs only the next level, and working-time
    arithmetic is the costly part of a sweep."""

    def __init__(
        self,
        standard: TimeStandard | None,
        opened_at: datetime,
        due_at: datetime | None,
        calendar: WorkingCalendar,
        multiples: Sequence[int],
    ) -> None:
        self._standard, self._opened_at, self._calendar = standard, opened_at, calendar
        self._multiples = multiples if standard is not None and due_at is not None else ()
        self._known: dict[int, datetime] = {} if due_at is None else {0: due_at}

    def __len__(self) -> int:
        return len(self._multiples)

    @overload
    def __getitem__(self, index: int) -> datetime: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[datetime]: ...
    def __getitem__(self, index: int | slice) -> datetime | Sequence[datetime]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index not in self._known:
            assert self._standard is not None
            longest, multiple = self._standard.max_duration, self._multiples[index]
            scaled = Duration(days=longest.days * multiple, seconds=longest.seconds * multiple)
            if self._standard.basis == "calendar":
                at = self._opened_at + timedelta(days=scaled.days, seconds=scaled.seconds)
            else:
                at = self._calendar.add_working_time(self._opened_at, scaled)
            self._known[index] = at
        return self._known[index]


def thresholds(
    standard: TimeStandard | None,
    opened_at: datetime,
    due_at: datetime | None,
    calendar: WorkingCalendar,
    multiples: Sequence[int],
) -> Thresholds:
    return Thresholds(standard, opened_at, due_at, calendar, multiples)


async def sweep(
    session: AsyncSession,
    services: Services,
    now: datetime,
    *,
    multiples: Sequence[int],
    limit: int = BATCH_SIZE,
) -> SweepReport:
    """Fire the deadline notices due at `now` for at most `limit` tasks and `limit`
    instances, in the caller's transaction. Batches stay small so that the instance rows
    are locked briefly; the caller loops while a batch comes back full."""
    report = SweepReport()
    due, report.more = await repository.load_due(session, now, limit)
    if not due:
        return report
    directory = await services.directory(session, *{record.satker_id for record, _ in due})
    instance_rows, task_rows, event_rows = [], [], []
    changed: list[tuple[repository.InstanceRow, InstanceState, InstanceState, list[NewEvent]]] = []
    for record, tasks in due:
        definition = await services.definition(session, record.sop_code, record.sop_version)
        calendar = await services.calendars.get(session, directory.get(record.satker_id))
        actor = Actor.worker(record.satker_id)
        state = before = repository.instance_state(record, tasks)
        decisions = []
        if record.next_check_at is not None and record.next_check_at <= now:
            limits = thresholds(
                definition.time_standard, record.started_at, record.due_at, calendar, multiples
            )
            decisions.append(Escalate(actor=actor, task_id=None, thresholds=limits))
        for task in tasks:
            standard = definition.step(task.step_id).time_standard
            limits = thresholds(standard, task.opened_at, task.due_at, calendar, multiples)
            decisions.append(Escalate(actor=actor, task_id=task.id, thresholds=limits))
        events = []
        for command in decisions:
            try:
                decision = decide(
                    definition, state, command, now, deadlines=_no_deadlines, roles=services.roles
                )
            except DomainError:
                continue  # nothing due after all (e.g. thresholds moved): skip it
            events += decision_events(decision, state, actor, now)
            state = decision.state
            report.tasks += command.task_id is not None
            report.instances += command.task_id is None
        if state is not before:
            changed.append((record, before, state, events))
    unstaffed = await _address_escalations(
        session, directory, [(record, events) for record, _, _, events in changed], now
    )
    for record, before, state, events in changed:
        rows = hashchain.chain(record.id, record.event_count + 1, record.head_hash, events)
        instance_rows.append(_instance_values(record, state, rows))
        # The engine keeps the very objects of the tasks it leaves alone.
        unchanged = {id(t) for t in before.tasks}
        task_rows += [
            {"id": t.id, **{name: getattr(t, name) for name in repository.WATCH_TASK}}
            for t in state.tasks
            if id(t) not in unchanged
        ]
        event_rows += rows
        for row in rows:
            report.event_types[row["type"]] += 1
    written = await repository.save_watch(session, instance_rows, task_rows)
    if written < len(instance_rows):
        raise SweepRaced(f"{len(instance_rows) - written} instance(s) changed meanwhile")
    satkers = {record.id: record.satker_id for record, _ in due}
    await audit_events.insert(session, event_rows, satkers=satkers)
    for satker, role, data in unstaffed:
        await acting.report_unstaffed(
            session, satker=satker, role=role, cause="escalation", data=data, now=now
        )
    report.events = len(event_rows)
    report.unstaffed = len(unstaffed)
    return report


_ESCALATIONS = frozenset({"task.escalated", "instance.escalated"})


async def _address_escalations(
    session: AsyncSession,
    directory: SatkerDirectory,
    changes: list[tuple[repository.InstanceRow, list[NewEvent]]],
    now: datetime,
) -> list[tuple[str, str, dict[str, object]]]:
    """Name on each escalation event the people it reaches (`to_people`: the holders of
    `to_role` in the instance's satker, then those acting in it); return what to report
    for the escalations that reached nobody."""
    escalations = [
        (record, event)
        for record, events in changes
        for event in events
        if event.type in _ESCALATIONS
    ]
    if not escalations:
        return []
    holders = await acting.role_holders(
        session,
        directory,
        {(record.satker_id, event.data["to_role"]) for record, event in escalations},
        now,
    )
    unstaffed = []
    for record, event in escalations:
        role = event.data["to_role"]
        found = holders[(record.satker_id, role)]
        event.data["to_people"] = [
            {"username": h.username, "acting": h.acting.audit() if h.acting else None}
            for h in found
        ]
        if not found:
            data: dict[str, object] = {
                "instance_id": record.id,
                "sop": record.sop_code,
                "task_id": event.task_id,
                "level": event.data["level"],
            }
            unstaffed.append((record.satker_id, role, data))
    return unstaffed


def _no_deadlines(
    standard: TimeStandard, opened_at: datetime
) -> tuple[datetime | None, datetime | None]:
    raise AssertionError("escalation opens no task")  # pragma: no cover


def _instance_values(
    record: repository.InstanceRow, state: InstanceState, rows: list[dict[str, object]]
) -> dict[str, object]:
    last = rows[-1] if rows else {"seq": record.event_count, "hash": record.head_hash}
    return {
        "id": record.id,
        "expected_version": record.version,
        "version": state.version,
        "warned_at": state.warned_at,
        "escalation_level": state.escalation_level,
        "next_check_at": state.next_check_at,
        "event_count": last["seq"],
        "head_hash": last["hash"],
    }
