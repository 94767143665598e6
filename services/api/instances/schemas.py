"""Request and response shapes of instances and tasks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from pydantic import BaseModel, Field, model_validator

from services.core.engine.calendar import WorkingCalendar
from services.core.engine.definition import Role, SopDefinition
from services.core.engine.state import TaskState, is_overdue
from services.core.instances.service import InstanceView
from services.core.validation import Instant, StrictBody

if TYPE_CHECKING:
    from services.core.audit.models import AuditEventRecord
    from services.core.instances.models import TaskRecord


class InstanceCreate(StrictBody):
    sop: str = Field(
        max_length=64, description="SOP code (or number) to start; its current version is pinned."
    )
    title: str = Field(min_length=1, max_length=300)
    entry_point: str | None = Field(
        default=None, max_length=64, description="Step id; default the first."
    )
    context: dict[str, Any] = Field(default_factory=dict)
    satker: str | None = Field(
        default=None, max_length=64, description="Default: the caller's satker."
    )
    started_at: Instant | None = Field(
        default=None,
        description="Admins only: when a procedure begun on paper started (not in the "
        "future, not before 2000-01-01).",
    )


class TransitionCreate(StrictBody):
    task: str | None = Field(
        default=None, max_length=36, description="Id of the open task to complete."
    )
    step: str | None = Field(
        default=None, max_length=64, description="Or the step id of the open task."
    )
    outcome: str | None = Field(default=None, max_length=64, description="Required at a decision.")
    note: str | None = Field(default=None, max_length=4000)
    evidence: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list,
        max_length=50,
        description="References: ids of files attached to the instance "
        "(`POST /v1/instances/{id}/files`, checked), URLs, other records.",
    )

    @model_validator(mode="after")
    def _task_or_step(self) -> TransitionCreate:
        if (self.task is None) == (self.step is None):
            raise ValueError("give exactly one of `task` and `step`")
        return self


class CancelCreate(StrictBody):
    reason: str = Field(min_length=1, max_length=2000)


class CommentCreate(StrictBody):
    text: str = Field(min_length=1, max_length=4000)
    task: str | None = Field(default=None, max_length=36)
    kind: Literal["note", "tindak_lanjut"] = Field(
        default="note",
        description="`tindak_lanjut`: a corrective action, listed in the Monev SOP form.",
    )
    evidence: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list,
        max_length=50,
        description="Ids of files attached to the instance (checked), URLs, other records.",
    )


class AssignCreate(StrictBody):
    assignee: str = Field(min_length=1, max_length=200, description="The `sub` to assign.")


class TaskPublic(BaseModel):
    id: str
    step_id: str
    step_number: int
    activity: str
    lane: str
    lane_name: str
    owner: str | None
    kind: str
    status: str
    outcomes: list[str] | None = Field(description="Allowed outcomes at a decision.")
    opened_at: datetime
    warn_at: datetime | None
    due_at: datetime | None
    overdue: bool
    assignee: str | None
    claimed_at: datetime | None
    completed_at: datetime | None
    completed_by: str | None
    outcome: str | None
    note: str | None
    evidence: list[str]
    warned_at: datetime | None
    escalation_level: int
    flag: str | None = Field(description="Why an automated step needs a person.")


def task_document(
    task: TaskState, definition: SopDefinition, roles: Mapping[str, Role], now: datetime
) -> dict[str, Any]:
    """A task as `TaskPublic` shows it, as plain data."""
    step = definition.step(task.step_id)
    lane = roles.get(task.lane)
    return {
        "id": task.id,
        "step_id": task.step_id,
        "step_number": step.number,
        "activity": step.activity,
        "lane": task.lane,
        "lane_name": lane.name if lane else task.lane,
        "owner": step.owner,
        "kind": task.kind.value,
        "status": task.status.value,
        "outcomes": list(step.outcomes) if step.outcomes is not None else None,
        "opened_at": task.opened_at,
        "warn_at": task.warn_at,
        "due_at": task.due_at,
        "overdue": task.is_overdue(now),
        "assignee": task.assignee,
        "claimed_at": task.claimed_at,
        "completed_at": task.completed_at,
        "completed_by": task.completed_by,
        "outcome": task.outcome,
        "note": task.note,
        "evidence": list(task.evidence),
        "warned_at": task.warned_at,
        "escalation_level": task.escalation_level,
        "flag": task.flag,
    }


class InstanceSummary(BaseModel):
    id: str
    sop: str
    sop_version: int
    satker: str
    title: str
    status: str
    version: int
    started_at: datetime
    ended_at: datetime | None
    due_at: datetime | None
    created_by: str


class InstancePublic(InstanceSummary):
    sop_title: str
    context: dict[str, Any]
    current_steps: list[str]
    overdue: bool
    tasks: list[TaskPublic]


def instance_document(
    view: InstanceView, roles: Mapping[str, Role], now: datetime
) -> dict[str, Any]:
    """An instance as `InstancePublic` shows it, as plain data (datetimes as they are)."""
    record, state = view.record, view.state
    tasks = [task_document(task, view.definition, roles, now) for task in state.tasks]
    return {
        "id": record.id,
        "sop": record.sop_code,
        "sop_version": record.sop_version,
        "satker": record.satker_id,
        "title": record.title,
        "status": state.status.value,
        "version": state.version,
        "started_at": state.started_at,
        "ended_at": state.ended_at,
        "due_at": state.due_at,
        "created_by": record.created_by,
        "sop_title": view.definition.title,
        "context": record.context,
        "current_steps": [task.step_id for task in state.open_tasks],
        "overdue": state.is_overdue(now),
        "tasks": tasks,
    }


def instance_public(view: InstanceView, roles: Mapping[str, Role], now: datetime) -> InstancePublic:
    return InstancePublic.model_validate(instance_document(view, roles, now))


def instance_json(view: InstanceView, roles: Mapping[str, Role], now: datetime) -> bytes:
    """`instance_public(...)` as the JSON FastAPI would send, written by orjson in one
    step: the busiest endpoints skip building and serialising the models (a dozen tasks
    cost them about half a millisecond). Datetimes come out as pydantic writes them, UTC
    with a `Z`."""
    return orjson.dumps(instance_document(view, roles, now), option=orjson.OPT_UTC_Z)


class InstancePage(BaseModel):
    items: list[InstanceSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class InboxTask(BaseModel):
    id: str
    instance_id: str
    instance_title: str
    satker: str
    sop: str
    sop_number: int
    sop_title: str
    step_id: str
    step_number: int
    activity: str
    lane: str
    lane_name: str
    owner: str | None
    kind: str
    outcomes: list[str] | None = Field(description="Allowed outcomes at a decision.")
    opened_at: datetime
    warn_at: datetime | None
    due_at: datetime | None
    overdue: bool
    late_by: str | None = Field(
        description=(
            "How late an overdue task is, in the satker's working time, as an ISO 8601 "
            "duration: P2DT3H is 2 working days and 3 working hours; null when not late."
        )
    )
    assignee: str | None
    escalation_level: int


def inbox_task(
    record: TaskRecord,
    *,
    instance_title: str,
    definition: SopDefinition,
    roles: Mapping[str, Role],
    calendar: WorkingCalendar,
    now: datetime,
) -> InboxTask:
    step = definition.step(record.step_id)
    lane = roles.get(record.lane)
    overdue = is_overdue(record.due_at, now)
    late_by = None
    if overdue and record.due_at is not None:
        late_by = calendar.working_lateness(record.due_at, now).isoformat()
    return InboxTask(
        id=record.id,
        instance_id=record.instance_id,
        instance_title=instance_title,
        satker=record.satker_id,
        sop=record.sop_code,
        sop_number=definition.number,
        sop_title=definition.title,
        step_id=record.step_id,
        step_number=step.number,
        activity=step.activity,
        lane=record.lane,
        lane_name=lane.name if lane else record.lane,
        owner=record.owner,
        kind=record.kind,
        outcomes=list(step.outcomes) if step.outcomes is not None else None,
        opened_at=record.opened_at,
        warn_at=record.warn_at,
        due_at=record.due_at,
        overdue=overdue,
        late_by=late_by,
        assignee=record.assignee,
        escalation_level=record.escalation_level,
    )


class InboxPage(BaseModel):
    items: list[InboxTask]


class EventPublic(BaseModel):
    seq: int
    type: str
    actor: str
    actor_name: str | None
    occurred_at: datetime
    task_id: str | None
    data: dict[str, Any]
    acting_for: dict[str, Any] | None = Field(
        description="The role the actor held in someone's stead to do this (a Plh/Plt): "
        "`id` of the assignment, `role`, `satker`, `kind` and `holder`; null when the "
        "actor acted in their own right."
    )
    hash: str

    @classmethod
    def of(cls, record: AuditEventRecord) -> EventPublic:
        return cls(
            seq=record.seq,
            type=record.type,
            actor=record.actor,
            actor_name=record.actor_name,
            occurred_at=record.occurred_at,
            task_id=record.task_id,
            data=record.data,
            acting_for=record.acting_for,
            hash=record.hash,
        )


class EventPage(BaseModel):
    items: list[EventPublic]


class AuditReport(BaseModel):
    instance_id: str
    valid: bool
    events: int
    problems: list[str]
