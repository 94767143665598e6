"""Instance and task state, the commands that change it, and the effects of a change.

Everything is a frozen dataclass of plain values (str, datetime, tuples): a repository
maps each state class to a row field by field, and the engine cannot mutate a snapshot
it was handed. Effects are data too; each names the audit event type it becomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from services.core.engine.definition import StepKind

# The actor automated steps' jobs complete their tasks as (ARCHITECTURE.md, Workers).
SYSTEM_WORKER = "system:worker"
WORKER_NAME = "Alur worker"
# Operates Alur itself; may cancel any procedure but is not a lane.
ADMIN_ROLE = "admin"


def is_overdue(due_at: datetime | None, now: datetime) -> bool:
    """Overdue from the deadline itself on: the moment escalation acts on it. Every
    "overdue" of Alur (API fields, filters, the inbox order, metrics) is this one; in
    SQL, `services.core.instances.models.past_due`."""
    return due_at is not None and due_at <= now


class InstanceStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TaskStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, kw_only=True)
class ActingRole:
    """A role held for a period in someone's stead (Plh: a short absence, Plt: a vacancy).

    `holder` is whom the actor stands in for, when known."""

    id: str
    role: str
    satker: str
    kind: str
    holder: str | None = None

    def audit(self) -> dict[str, str | None]:
        """What an audit event records as `acting_for`."""
        return {
            "id": self.id,
            "role": self.role,
            "satker": self.satker,
            "kind": self.kind,
            "holder": self.holder,
        }


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who issues a command: the JWT principal, or `system:worker` for jobs.

    `acting`: the roles the actor holds in someone's stead right now. The engine decides
    on `roles` alone; the instance service adds an acting role to them only when the
    actor's own roles do not allow the command, and records it on the audit events."""

    sub: str
    roles: frozenset[str] = frozenset()
    satker: str
    name: str | None = None
    acting: tuple[ActingRole, ...] = ()

    @property
    def is_worker(self) -> bool:
        return self.sub == SYSTEM_WORKER

    @classmethod
    def worker(cls, satker: str = "") -> Actor:
        """The worker, acting for the jobs of `satker` (any satker when empty)."""
        return cls(sub=SYSTEM_WORKER, satker=satker, name=WORKER_NAME)


@dataclass(frozen=True, kw_only=True)
class TaskState:
    id: str
    step_id: str
    lane: str
    kind: StepKind
    status: TaskStatus = TaskStatus.OPEN
    opened_at: datetime
    warn_at: datetime | None = None
    due_at: datetime | None = None
    assignee: str | None = None
    claimed_at: datetime | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    outcome: str | None = None
    note: str | None = None
    evidence: tuple[str, ...] = ()
    # Deadline watch (the sweep's `Escalate`): when warned, how far up it went, and when
    # the next notice falls due (None: nothing more to watch).
    warned_at: datetime | None = None
    escalation_level: int = 0
    next_check_at: datetime | None = None
    # Set when an automated step's job gave up: a person has to do the step.
    flag: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status is TaskStatus.OPEN

    def is_overdue(self, now: datetime) -> bool:
        return self.is_open and is_overdue(self.due_at, now)


@dataclass(frozen=True, kw_only=True)
class InstanceState:
    id: str
    sop_code: str
    sop_version: int
    satker: str
    status: InstanceStatus = InstanceStatus.ACTIVE
    version: int
    started_at: datetime
    ended_at: datetime | None = None
    # The procedure-level standard (SOP 09, 10), watched like a task's.
    warn_at: datetime | None = None
    due_at: datetime | None = None
    warned_at: datetime | None = None
    escalation_level: int = 0
    next_check_at: datetime | None = None
    tasks: tuple[TaskState, ...] = ()

    @property
    def is_active(self) -> bool:
        return self.status is InstanceStatus.ACTIVE

    @property
    def open_tasks(self) -> tuple[TaskState, ...]:
        return tuple(task for task in self.tasks if task.is_open)

    def is_overdue(self, now: datetime) -> bool:
        """An open task past its deadline, or the procedure past its own."""
        return any(task.is_overdue(now) for task in self.tasks) or (
            self.is_active and is_overdue(self.due_at, now)
        )

    def task(self, task_id: str) -> TaskState | None:
        for task in self.tasks:
            if task.id == task_id:
                return task
        return None


# --- commands -------------------------------------------------------------------------
# `new_task_ids` are generated by the caller (the engine has no uuid4); a command that
# opens fewer tasks than ids given simply leaves the rest unused.


@dataclass(frozen=True, kw_only=True)
class Start:
    actor: Actor
    instance_id: str
    entry_point: str | None = None
    new_task_ids: Sequence[str] = ()
    # The satker the instance belongs to; the actor's own when not given (a worker or an
    # admin starts procedures for courts other than its token's).
    satker: str | None = None


@dataclass(frozen=True, kw_only=True)
class CompleteTask:
    actor: Actor
    task_id: str
    outcome: str | None = None
    note: str | None = None
    evidence: Sequence[str] = ()
    new_task_ids: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class RecordExternal:
    actor: Actor
    task_id: str
    note: str | None = None
    evidence: Sequence[str] = ()
    outcome: str | None = None
    new_task_ids: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class Claim:
    actor: Actor
    task_id: str


@dataclass(frozen=True, kw_only=True)
class Assign:
    actor: Actor
    task_id: str
    assignee_sub: str


@dataclass(frozen=True, kw_only=True)
class Release:
    actor: Actor
    task_id: str


@dataclass(frozen=True, kw_only=True)
class Cancel:
    actor: Actor
    reason: str


# What a comment is: a plain note, or a corrective action (the Monev SOP form's
# *tindak lanjut*), which the reports list.
COMMENT_KINDS = ("note", "tindak_lanjut")


@dataclass(frozen=True, kw_only=True)
class Comment:
    actor: Actor
    text: str
    task_id: str | None = None
    kind: str = "note"
    evidence: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class AttachedFile:
    """An evidence file as stored: immutable, named by the SHA-256 of its content."""

    id: str
    name: str
    media_type: str
    size: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class AttachFile:
    """Record an evidence file on the instance (or one of its open tasks): its hash goes
    into the audit chain, so the trail proves which content was attached."""

    actor: Actor
    file: AttachedFile
    task_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Escalate:
    """The deadline sweep's command: fire the notices due at `now` for one task (or the
    instance's procedure-level deadline when `task_id` is None).

    `thresholds[i]` is when level i + 1 fires (level 1 at the due date, further levels at
    multiples of the standard), computed in the satker's working calendar by the caller.
    """

    actor: Actor
    task_id: str | None
    thresholds: Sequence[datetime]


@dataclass(frozen=True, kw_only=True)
class Flag:
    """Mark an open task for a person (an automated step's job gave up)."""

    actor: Actor
    task_id: str
    reason: str


Command = (
    Start
    | CompleteTask
    | RecordExternal
    | Claim
    | Assign
    | Release
    | Cancel
    | Comment
    | AttachFile
    | Escalate
    | Flag
)


# --- effects --------------------------------------------------------------------------
# Task-carrying effects hold the task as it is *after* the change.


@dataclass(frozen=True, kw_only=True)
class InstanceStarted:
    event_type: ClassVar[str] = "instance.started"
    entry_point: str


@dataclass(frozen=True, kw_only=True)
class TaskOpened:
    event_type: ClassVar[str] = "task.opened"
    task: TaskState


@dataclass(frozen=True, kw_only=True)
class EnqueueJob:
    """Run `job` for the automated task; the service sends it only after commit."""

    event_type: ClassVar[str] = "job.enqueued"
    job: str
    task_id: str


@dataclass(frozen=True, kw_only=True)
class TaskCompleted:
    event_type: ClassVar[str] = "task.completed"
    task: TaskState
    outcome: str | None


@dataclass(frozen=True, kw_only=True)
class TaskClaimed:
    event_type: ClassVar[str] = "task.claimed"
    task: TaskState


@dataclass(frozen=True, kw_only=True)
class TaskAssigned:
    event_type: ClassVar[str] = "task.assigned"
    task: TaskState
    previous_assignee: str | None


@dataclass(frozen=True, kw_only=True)
class TaskReleased:
    event_type: ClassVar[str] = "task.released"
    task: TaskState
    previous_assignee: str


@dataclass(frozen=True, kw_only=True)
class TaskCancelled:
    event_type: ClassVar[str] = "task.cancelled"
    task: TaskState


@dataclass(frozen=True, kw_only=True)
class InstanceCompleted:
    event_type: ClassVar[str] = "instance.completed"


@dataclass(frozen=True, kw_only=True)
class InstanceCancelled:
    event_type: ClassVar[str] = "instance.cancelled"
    reason: str


@dataclass(frozen=True, kw_only=True)
class CommentAdded:
    event_type: ClassVar[str] = "comment.added"
    text: str
    task_id: str | None
    kind: str = "note"
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class InstanceMigrated:
    """The instance moved to another version of its SOP; `moves` names the tasks that
    changed step (`task_id`, `from_step`, `to_step`)."""

    event_type: ClassVar[str] = "instance.migrated"
    from_version: int
    to_version: int
    moves: tuple[dict[str, str | None], ...]


@dataclass(frozen=True, kw_only=True)
class FileAttached:
    event_type: ClassVar[str] = "file.attached"
    file_id: str
    name: str
    media_type: str
    size: int
    sha256: str
    task_id: str | None


@dataclass(frozen=True, kw_only=True)
class TaskDueSoon:
    event_type: ClassVar[str] = "task.due_soon"
    task: TaskState


@dataclass(frozen=True, kw_only=True)
class TaskOverdue:
    event_type: ClassVar[str] = "task.overdue"
    task: TaskState


@dataclass(frozen=True, kw_only=True)
class TaskEscalated:
    event_type: ClassVar[str] = "task.escalated"
    task: TaskState
    level: int
    to_role: str


@dataclass(frozen=True, kw_only=True)
class InstanceDueSoon:
    event_type: ClassVar[str] = "instance.due_soon"
    due_at: datetime


@dataclass(frozen=True, kw_only=True)
class InstanceOverdue:
    event_type: ClassVar[str] = "instance.overdue"
    due_at: datetime


@dataclass(frozen=True, kw_only=True)
class InstanceEscalated:
    event_type: ClassVar[str] = "instance.escalated"
    level: int
    to_role: str


@dataclass(frozen=True, kw_only=True)
class TaskFlagged:
    event_type: ClassVar[str] = "task.flagged"
    task: TaskState
    reason: str


Effect = (
    InstanceStarted
    | TaskOpened
    | EnqueueJob
    | TaskCompleted
    | TaskClaimed
    | TaskAssigned
    | TaskReleased
    | TaskCancelled
    | InstanceCompleted
    | InstanceCancelled
    | CommentAdded
    | FileAttached
    | InstanceMigrated
    | TaskDueSoon
    | TaskOverdue
    | TaskEscalated
    | InstanceDueSoon
    | InstanceOverdue
    | InstanceEscalated
    | TaskFlagged
)


@dataclass(frozen=True, kw_only=True)
class Decision:
    state: InstanceState
    effects: tuple[Effect, ...]
