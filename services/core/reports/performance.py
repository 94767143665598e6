"""The SOP performance report: per SOP and per step, how many tasks were done on time,
late, or are still open, and how long they took in working time against the standard.

Counted over the tasks opened in the period (in the satker's local dates): a task is
*on time* when it was completed by its due date, *late* when after it; a task without a
time standard is counted apart (`without_standard`). Durations are working time in the
satker's calendar, the same as the deadlines (elapsed time for a standard counted in
calendar days). Percentiles are nearest-rank.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.core.audit.models import AuditEventRecord
from services.core.db import asyncpg_connection
from services.core.engine.calendar import WorkingCalendar, WorkingClock
from services.core.engine.definition import Catalog, SopDefinition, Step
from services.core.instances.models import InstanceRecord, TaskRecord
from services.core.reports.periods import MAX_DAYS, Period

# The late tasks listed by name; the count covers them all.
LATE_TASKS_LISTED = 500


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: str
    instance_id: str
    sop_code: str
    step_id: str
    status: str
    opened_at: datetime
    due_at: datetime | None
    completed_at: datetime | None
    escalation_level: int


@dataclass
class Figures:
    """Counts and durations of a set of tasks (one step, or one SOP)."""

    tasks: int = 0
    on_time: int = 0
    late: int = 0
    without_standard: int = 0
    open: int = 0
    open_overdue: int = 0
    cancelled: int = 0
    escalations: dict[int, int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list, repr=False)
    # Each completed task's duration as a share of the time its standard allowed it.
    shares: list[float] = field(default_factory=list, repr=False)

    @property
    def completed(self) -> int:
        return self.on_time + self.late + self.without_standard

    @property
    def on_time_percent(self) -> float | None:
        judged = self.on_time + self.late
        return None if judged == 0 else round(100 * self.on_time / judged, 1)

    @property
    def median_seconds(self) -> float | None:
        return _rank(sorted(self.durations), 0.5)

    @property
    def p90_seconds(self) -> float | None:
        return _rank(sorted(self.durations), 0.9)

    @property
    def median_standard_percent(self) -> float | None:
        return _rank(sorted(self.shares), 0.5)

    @property
    def p90_standard_percent(self) -> float | None:
        return _rank(sorted(self.shares), 0.9)

    def add(
        self, task: TaskRow, duration: float | None, now: datetime, share: float | None = None
    ) -> None:
        self.tasks += 1
        if task.escalation_level:
            self.escalations[task.escalation_level] = (
                self.escalations.get(task.escalation_level, 0) + 1
            )
        if task.status == "cancelled":
            self.cancelled += 1
        elif task.completed_at is None:
            self.open += 1
            if task.due_at is not None and task.due_at <= now:
                self.open_overdue += 1
        else:
            if task.due_at is None:
                self.without_standard += 1
            elif task.completed_at <= task.due_at:
                self.on_time += 1
            else:
                self.late += 1
            if duration is not None:
                self.durations.append(duration)
            if share is not None:
                self.shares.append(share)


def _rank(ordered: Sequence[float], share: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(share * len(ordered)) - 1)], 1)


@dataclass
class StepReport:
    step_id: str
    number: int | None
    activity: str | None
    lane: str | None
    standard: str | None
    figures: Figures


@dataclass
class SopReport:
    code: str
    number: int | None
    title: str | None
    instances: int
    figures: Figures
    steps: list[StepReport]


@dataclass
class LateTask:
    task_id: str
    instance_id: str
    title: str
    sop: str
    step_id: str
    due_at: datetime
    completed_at: datetime | None
    late_seconds: float
    reasons: list[str]


@dataclass
class PerformanceReport:
    satker: str
    period: Period
    generated_at: datetime
    sops: list[SopReport]
    late_tasks: list[LateTask]
    late_tasks_total: int


_COLUMNS = (
    "id", "instance_id", "sop_code", "step_id", "status", "opened_at", "due_at",
    "completed_at", "escalation_level",
)  # fmt: skip
_PLAIN_ROWS = f"""
SELECT {", ".join(_COLUMNS)} FROM task
WHERE satker_id = $1 AND opened_at >= $2 AND opened_at < $3 AND ($4::text IS NULL OR sop_code = $4)
"""


async def task_rows(
    session: AsyncSession,
    satker_id: str,
    start: datetime,
    end: datetime,
    sop: str | None = None,
) -> list[TaskRow]:
    """The satker's tasks opened in [start, end) (`ix_task_satker_opened`). A year of a
    busy court is 100,000 rows: on PostgreSQL they come as plain SQL through asyncpg."""
    pg = await asyncpg_connection(session)
    if pg is not None:
        return [
            TaskRow(*record) for record in await pg.fetch(_PLAIN_ROWS, satker_id, start, end, sop)
        ]
    task = TaskRecord.__table__.c  # type: ignore[attr-defined]
    query = sa.select(*(task[name] for name in _COLUMNS)).where(
        task.satker_id == satker_id, task.opened_at >= start, task.opened_at < end
    )
    if sop is not None:
        query = query.where(task.sop_code == sop)
    return [TaskRow(*row) for row in (await session.execute(query)).all()]


async def add_reasons(session: AsyncSession, late: Sequence[LateTask]) -> None:
    """Give the listed late tasks their instance's title and their reasons: the comments
    made on the task, oldest first, then its completion note."""
    if not late:
        return
    ids = [task.task_id for task in late]
    comments: dict[str, list[str]] = defaultdict(list)
    rows = await session.execute(
        sa.select(col(AuditEventRecord.task_id), col(AuditEventRecord.data))
        .where(
            col(AuditEventRecord.type) == "comment.added", col(AuditEventRecord.task_id).in_(ids)
        )
        .order_by(col(AuditEventRecord.id))
    )
    for task_id, data in rows.all():
        if task_id is not None and isinstance(data, dict) and data.get("text"):
            comments[task_id].append(str(data["text"]))
    notes = await session.execute(
        sa.select(col(TaskRecord.id), col(TaskRecord.note)).where(col(TaskRecord.id).in_(ids))
    )
    for task_id, note in notes.all():
        if note:
            comments[task_id].append(note)
    found = await session.execute(
        sa.select(col(InstanceRecord.id), col(InstanceRecord.title)).where(
            col(InstanceRecord.id).in_({task.instance_id for task in late})
        )
    )
    titles: dict[str, str] = dict(found.all())
    for task in late:
        task.title = titles.get(task.instance_id, "")
        task.reasons = comments.get(task.task_id, [])


def _steps(definition: SopDefinition | None) -> Mapping[str, Step]:
    return {} if definition is None else {step.id: step for step in definition.steps}


def compute(
    rows: Sequence[TaskRow],
    catalog: Catalog,
    calendar: WorkingCalendar,
    *,
    satker: str,
    period: Period,
    now: datetime,
) -> PerformanceReport:
    """The figures of `rows`; the late tasks listed get their reasons and their
    instance's title from `add_reasons`."""
    definitions = {sop.code: sop for sop in catalog.sops}
    steps_of = {code: _steps(definition) for code, definition in definitions.items()}
    # Open tasks are late until now; a clock reaching far past the period is not worth
    # building (the calendar answers for instants beyond it).
    last = min(max(period.last, now.date()), period.last + timedelta(days=MAX_DAYS))
    clock = WorkingClock(calendar, period.first, last)
    by_sop: dict[str, dict[str, Figures]] = defaultdict(lambda: defaultdict(Figures))
    totals: dict[str, Figures] = defaultdict(Figures)
    instances: dict[str, set[str]] = defaultdict(set)
    late: list[tuple[TaskRow, float]] = []
    for row in rows:
        step = steps_of.get(row.sop_code, {}).get(row.step_id)
        calendar_basis = (
            step is not None
            and step.time_standard is not None
            and step.time_standard.basis == "calendar"
        )
        duration = share = None
        spans = _Spans(row.opened_at, clock, calendar_basis)
        if row.completed_at is not None:
            duration = spans.to(row.completed_at)
            if row.due_at is not None:
                allowed = spans.to(row.due_at)
                if allowed > 0:
                    share = 100 * duration / allowed
        by_sop[row.sop_code][row.step_id].add(row, duration, now, share)
        totals[row.sop_code].add(row, duration, now, share)
        instances[row.sop_code].add(row.instance_id)
        if row.due_at is not None and row.status != "cancelled":
            finished = row.completed_at or (now if row.due_at <= now else None)
            if finished is not None and finished > row.due_at:
                late.append((row, spans.to(finished) - spans.to(row.due_at)))
    reports = []
    for code in sorted(by_sop, key=lambda c: (_number(definitions.get(c)), c)):
        definition = definitions.get(code)
        steps = _steps(definition)
        step_reports = [
            StepReport(
                step_id=step_id,
                number=steps[step_id].number if step_id in steps else None,
                activity=steps[step_id].activity if step_id in steps else None,
                lane=steps[step_id].lane if step_id in steps else None,
                standard=_standard(steps.get(step_id)),
                figures=figures,
            )
            for step_id, figures in sorted(
                by_sop[code].items(),
                key=lambda item: (steps[item[0]].number if item[0] in steps else 1_000, item[0]),
            )
        ]
        reports.append(
            SopReport(
                code=code,
                number=definition.number if definition else None,
                title=definition.title if definition else None,
                instances=len(instances[code]),
                figures=totals[code],
                steps=step_reports,
            )
        )
    late.sort(key=lambda item: -item[1])
    listed = [
        LateTask(
            task_id=row.id,
            instance_id=row.instance_id,
            title="",
            sop=row.sop_code,
            step_id=row.step_id,
            due_at=row.due_at,  # type: ignore[arg-type]
            completed_at=row.completed_at,
            late_seconds=round(seconds, 1),
            reasons=[],
        )
        for row, seconds in late[:LATE_TASKS_LISTED]
    ]
    return PerformanceReport(
        satker=satker,
        period=period,
        generated_at=now,
        sops=reports,
        late_tasks=listed,
        late_tasks_total=len(late),
    )


def _number(definition: SopDefinition | None) -> int:
    return definition.number if definition is not None else 1_000


def _standard(step: Step | None) -> str | None:
    if step is None or step.time_standard is None:
        return None
    return step.time_standard.source_text


class _Spans:
    """Time from one task's opening to instants of its life: working time in the
    satker's calendar (elapsed time for a standard in calendar days). The opening's
    offset on the clock is looked up once for all of them."""

    __slots__ = ("clock", "elapsed", "origin", "start")

    def __init__(self, start: datetime, clock: WorkingClock, elapsed: bool) -> None:
        self.start, self.clock, self.elapsed = start, clock, elapsed
        self.origin = None if elapsed else clock.offset(start)

    def to(self, instant: datetime) -> float:
        if self.elapsed:
            return (instant - self.start).total_seconds()
        if self.origin is not None:
            end = self.clock.offset(instant)
            if end is not None:
                return end - self.origin
        return self.clock.seconds_between(self.start, instant)
