"""The SOP state machine: `decide(definition, snapshot, command, now) -> Decision`.

Pure: the clock (`now`), new task ids (`new_task_ids` on commands), deadline
arithmetic (`deadlines`) and the role tree (`roles`) all come in as arguments, so the
same inputs always give the same decision and tests need no fakes beyond plain data.

Authorisation here is by catalog roles only. Which satker an actor may act in (a
parent court acting on its children's instances) needs the court tree and is the
instance service's check, made before `decide` is called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import assert_never

from services.core.engine import escalation
from services.core.engine.definition import Role, SopDefinition, Step, StepKind, TimeStandard
from services.core.engine.errors import (
    AlreadyClaimed,
    AlreadyStarted,
    DefinitionMismatch,
    DuplicateTaskId,
    EvidenceRequired,
    ExternalStepRequiresRecord,
    InstanceClosed,
    InstanceNotFound,
    InvalidCommentKind,
    InvalidEntryPoint,
    InvalidOutcome,
    LaneForbidden,
    NotAssignee,
    NotEnoughIds,
    NotExternalStep,
    OutcomeNotAllowed,
    OutcomeRequired,
    StepNotFound,
    StepNotOpen,
    TaskNotClaimed,
    TaskNotFound,
    TaskNotOpen,
    ValueRequired,
)
from services.core.engine.state import (
    ADMIN_ROLE,
    COMMENT_KINDS,
    Actor,
    Assign,
    AttachFile,
    Cancel,
    Claim,
    Command,
    Comment,
    CommentAdded,
    CompleteTask,
    Decision,
    Effect,
    EnqueueJob,
    Escalate,
    FileAttached,
    Flag,
    InstanceCancelled,
    InstanceCompleted,
    InstanceStarted,
    InstanceState,
    InstanceStatus,
    RecordExternal,
    Release,
    Start,
    TaskAssigned,
    TaskCancelled,
    TaskClaimed,
    TaskCompleted,
    TaskOpened,
    TaskReleased,
    TaskState,
    TaskStatus,
)

Deadlines = Callable[[TimeStandard, datetime], tuple[datetime | None, datetime | None]]
"""(time standard, opened at) -> (warn_at, due_at), in the satker's working calendar."""


@dataclass(frozen=True)
class _Context:
    definition: SopDefinition
    now: datetime
    deadlines: Deadlines
    roles: Mapping[str, Role]

    def step(self, step_id: str) -> Step:
        try:
            return self.definition.step(step_id)
        except KeyError:
            # Only reachable when a snapshot was paired with the wrong definition.
            raise DefinitionMismatch(
                expected=f"a definition with step {step_id}", actual=_label(self.definition)
            ) from None

    def above(self, role_ids: Iterable[str]) -> frozenset[str]:
        """Every role strictly above any of `role_ids` along `reports_to`."""
        found: set[str] = set()
        for role_id in role_ids:
            role = self.roles.get(role_id)
            current = role.reports_to if role is not None else None
            while current is not None and current not in found:
                found.add(current)
                parent = self.roles.get(current)
                current = parent.reports_to if parent is not None else None
        return frozenset(found)


def decide(
    definition: SopDefinition,
    snapshot: InstanceState | None,
    command: Command,
    now: datetime,
    *,
    deadlines: Deadlines,
    roles: Mapping[str, Role],
) -> Decision:
    """Accept `command` against `snapshot` and return the new state and its effects.

    Raises a `DomainError` subclass when the command is refused; inputs are never mutated.
    """
    if now.utcoffset() is None:
        # Deadlines and audit times are compared across satkers and persisted: naive is a bug.
        raise ValueError("now must be timezone-aware")
    ctx = _Context(definition, now, deadlines, roles)
    if isinstance(command, Start):
        if snapshot is not None:
            raise AlreadyStarted(snapshot.id)
        return _start(ctx, command)
    if snapshot is None:
        raise InstanceNotFound()
    if (snapshot.sop_code, snapshot.sop_version) != (definition.code, definition.version):
        raise DefinitionMismatch(
            expected=f"{snapshot.sop_code} v{snapshot.sop_version}", actual=_label(definition)
        )
    if not snapshot.is_active:
        raise InstanceClosed(snapshot.id, snapshot.status)
    match command:
        case CompleteTask():
            return _complete(ctx, snapshot, command)
        case RecordExternal():
            return _record_external(ctx, snapshot, command)
        case Claim():
            return _claim(ctx, snapshot, command)
        case Assign():
            return _assign(ctx, snapshot, command)
        case Release():
            return _release(ctx, snapshot, command)
        case Cancel():
            return _cancel(ctx, snapshot, command)
        case Comment():
            return _comment(snapshot, command)
        case AttachFile():
            return _attach(snapshot, command)
        case Escalate():
            return escalation.escalate(definition, snapshot, command, ctx.now, ctx.roles)
        case Flag():
            return escalation.flag(snapshot, command)
        case _:
            assert_never(command)


# --- commands -------------------------------------------------------------------------


def _start(ctx: _Context, command: Start) -> Decision:
    definition = ctx.definition
    entry = definition.entry_points[0] if command.entry_point is None else command.entry_point
    if entry not in definition.entry_points:
        raise InvalidEntryPoint(entry, definition.entry_points)
    step = ctx.step(entry)
    # Starting is doing the first step's work (or having it done), so the same people may.
    allowed = _acting_roles(step) | ctx.above(_acting_roles(step)) | {ADMIN_ROLE}
    if not (command.actor.is_worker or command.actor.roles & allowed):
        raise LaneForbidden("starting at step " + entry, allowed, step_id=entry)

    opened, effects = _open_steps(ctx, (entry,), command.new_task_ids, existing=())
    warn_at = due_at = None
    if definition.time_standard is not None:
        warn_at, due_at = ctx.deadlines(definition.time_standard, ctx.now)
    state = InstanceState(
        id=command.instance_id,
        sop_code=definition.code,
        sop_version=definition.version,
        satker=command.satker if command.satker is not None else command.actor.satker,
        status=InstanceStatus.ACTIVE,
        version=1,
        started_at=ctx.now,
        warn_at=warn_at,
        due_at=due_at,
        next_check_at=warn_at or due_at,
        tasks=tuple(opened),
    )
    return Decision(state=state, effects=(InstanceStarted(entry_point=entry), *effects))


def _complete(ctx: _Context, snapshot: InstanceState, command: CompleteTask) -> Decision:
    task = _open_task(snapshot, command.task_id)
    step = ctx.step(task.step_id)
    if step.kind is StepKind.EXTERNAL:
        raise ExternalStepRequiresRecord(task.id, step.id)
    actor = command.actor
    if actor.is_worker:
        # Jobs finish what they automate and nothing else, whatever roles they carry.
        if step.kind is not StepKind.AUTOMATED:
            raise LaneForbidden("completing", (), task_id=task.id, step_id=step.id)
    elif task.lane not in actor.roles:
        raise LaneForbidden("completing", (task.lane,), task_id=task.id, step_id=step.id)
    _check_assignee(task, actor)
    return _finish(
        ctx,
        snapshot,
        task,
        step,
        actor=actor,
        outcome=command.outcome,
        note=command.note,
        evidence=command.evidence,
        new_task_ids=command.new_task_ids,
    )


def _record_external(ctx: _Context, snapshot: InstanceState, command: RecordExternal) -> Decision:
    task = _open_task(snapshot, command.task_id)
    step = ctx.step(task.step_id)
    if step.kind is not StepKind.EXTERNAL:
        raise NotExternalStep(task.id, step.id)
    actor = command.actor
    # The owner records what the outside party did; the party's own token may record too.
    allowed = _acting_roles(step)
    if actor.is_worker or not actor.roles & allowed:
        raise LaneForbidden("recording", allowed, task_id=task.id, step_id=step.id)
    _check_assignee(task, actor)
    if not command.evidence and not _filled(command.note):
        raise EvidenceRequired(task.id)
    return _finish(
        ctx,
        snapshot,
        task,
        step,
        actor=actor,
        outcome=command.outcome,
        note=command.note,
        evidence=command.evidence,
        new_task_ids=command.new_task_ids,
    )


def _claim(ctx: _Context, snapshot: InstanceState, command: Claim) -> Decision:
    task = _open_task(snapshot, command.task_id)
    step = ctx.step(task.step_id)
    allowed = _acting_roles(step)
    if command.actor.is_worker or not command.actor.roles & allowed:
        raise LaneForbidden("claiming", allowed, task_id=task.id, step_id=step.id)
    if task.assignee is not None:
        raise AlreadyClaimed(task.id, task.assignee)
    claimed = replace(task, assignee=command.actor.sub, claimed_at=ctx.now)
    return _decision(snapshot, _with_task(snapshot, claimed), TaskClaimed(task=claimed))


def _assign(ctx: _Context, snapshot: InstanceState, command: Assign) -> Decision:
    task = _open_task(snapshot, command.task_id)
    step = ctx.step(task.step_id)
    _check_may_assign(ctx, step, task, command.actor, "assigning")
    if not _filled(command.assignee_sub):
        raise ValueRequired("assignee_sub")
    assigned = replace(task, assignee=command.assignee_sub, claimed_at=ctx.now)
    effect = TaskAssigned(task=assigned, previous_assignee=task.assignee)
    return _decision(snapshot, _with_task(snapshot, assigned), effect)


def _release(ctx: _Context, snapshot: InstanceState, command: Release) -> Decision:
    task = _open_task(snapshot, command.task_id)
    if task.assignee is None:
        raise TaskNotClaimed(task.id)
    if command.actor.sub != task.assignee:
        # Someone who could have assigned the task may also take it back.
        step = ctx.step(task.step_id)
        try:
            _check_may_assign(ctx, step, task, command.actor, "releasing")
        except LaneForbidden:
            raise NotAssignee(task.id, task.assignee) from None
    released = replace(task, assignee=None, claimed_at=None)
    effect = TaskReleased(task=released, previous_assignee=task.assignee)
    return _decision(snapshot, _with_task(snapshot, released), effect)


def _cancel(ctx: _Context, snapshot: InstanceState, command: Cancel) -> Decision:
    # "Above the first lane": whoever supervises the people who run the procedure.
    allowed = ctx.above(ctx.definition.lanes[:1]) | {ADMIN_ROLE}
    if command.actor.is_worker or not command.actor.roles & allowed:
        raise LaneForbidden("cancelling the instance", allowed)
    if not _filled(command.reason):
        raise ValueRequired("reason")
    cancelled = [
        replace(task, status=TaskStatus.CANCELLED, next_check_at=None)
        for task in snapshot.open_tasks
    ]
    by_id = {task.id: task for task in cancelled}
    state = replace(
        snapshot,
        status=InstanceStatus.CANCELLED,
        ended_at=ctx.now,
        next_check_at=None,
        version=snapshot.version + 1,
        tasks=tuple(by_id.get(task.id, task) for task in snapshot.tasks),
    )
    effects: list[Effect] = [TaskCancelled(task=task) for task in cancelled]
    effects.append(InstanceCancelled(reason=command.reason))
    return Decision(state=state, effects=tuple(effects))


def _comment(snapshot: InstanceState, command: Comment) -> Decision:
    if command.task_id is not None:
        _open_task(snapshot, command.task_id)
    if not _filled(command.text):
        raise ValueRequired("text")
    if command.kind not in COMMENT_KINDS:
        raise InvalidCommentKind(command.kind, COMMENT_KINDS)
    effect = CommentAdded(
        text=command.text,
        task_id=command.task_id,
        kind=command.kind,
        evidence=tuple(command.evidence),
    )
    return _decision(snapshot, snapshot.tasks, effect)


def _attach(snapshot: InstanceState, command: AttachFile) -> Decision:
    if command.task_id is not None:
        _open_task(snapshot, command.task_id)
    file = command.file
    effect = FileAttached(
        file_id=file.id,
        name=file.name,
        media_type=file.media_type,
        size=file.size,
        sha256=file.sha256,
        task_id=command.task_id,
    )
    return _decision(snapshot, snapshot.tasks, effect)


# --- shared rules ---------------------------------------------------------------------


def _finish(
    ctx: _Context,
    snapshot: InstanceState,
    task: TaskState,
    step: Step,
    *,
    actor: Actor,
    outcome: str | None,
    note: str | None,
    evidence: Sequence[str],
    new_task_ids: Sequence[str],
) -> Decision:
    """Close `task`, open what follows it and complete the instance when nothing is open."""
    targets = _targets(task, step, outcome)
    opened, opened_effects = _open_steps(ctx, targets, new_task_ids, existing=snapshot.tasks)
    completed = replace(
        task,
        status=TaskStatus.COMPLETED,
        completed_at=ctx.now,
        completed_by=actor.sub,
        outcome=outcome,
        note=note,
        evidence=tuple(evidence),
        next_check_at=None,
    )
    tasks = (*_with_task(snapshot, completed), *opened)
    effects: list[Effect] = [TaskCompleted(task=completed, outcome=outcome), *opened_effects]
    if any(candidate.is_open for candidate in tasks):
        state = replace(snapshot, version=snapshot.version + 1, tasks=tasks)
    else:
        state = replace(
            snapshot,
            version=snapshot.version + 1,
            tasks=tasks,
            status=InstanceStatus.COMPLETED,
            ended_at=ctx.now,
            next_check_at=None,
        )
        effects.append(InstanceCompleted())
    return Decision(state=state, effects=tuple(effects))


def _targets(task: TaskState, step: Step, outcome: str | None) -> tuple[str, ...]:
    """The steps to open after `step`; a null target or no `next` ends that path."""
    if step.outcomes is None:
        if outcome is not None:
            raise OutcomeNotAllowed(task.id, step.id, outcome)
        target = step.next
    else:
        if outcome is None:
            raise OutcomeRequired(task.id, step.id, step.outcomes)
        if outcome not in step.outcomes:
            raise InvalidOutcome(task.id, step.id, outcome, step.outcomes)
        target = step.outcomes[outcome]
    return () if target is None else (target,)


def _open_steps(
    ctx: _Context,
    step_ids: Sequence[str],
    new_task_ids: Sequence[str],
    *,
    existing: Sequence[TaskState],
) -> tuple[list[TaskState], list[Effect]]:
    if len(new_task_ids) < len(step_ids):
        raise NotEnoughIds(needed=len(step_ids), provided=len(new_task_ids))
    used = {task.id for task in existing}
    tasks: list[TaskState] = []
    effects: list[Effect] = []
    for step_id, task_id in zip(step_ids, new_task_ids, strict=False):
        if task_id in used:
            raise DuplicateTaskId(task_id)
        used.add(task_id)
        step = ctx.step(step_id)
        warn_at = due_at = None
        if step.time_standard is not None:
            warn_at, due_at = ctx.deadlines(step.time_standard, ctx.now)
        # A loop back to an earlier step is a new task; the earlier one stays completed.
        task = TaskState(
            id=task_id,
            step_id=step.id,
            lane=step.lane,
            kind=step.kind,
            opened_at=ctx.now,
            warn_at=warn_at,
            due_at=due_at,
            next_check_at=warn_at or due_at,
        )
        tasks.append(task)
        effects.append(TaskOpened(task=task))
        if step.kind is StepKind.AUTOMATED and step.job is not None:
            effects.append(EnqueueJob(job=step.job, task_id=task_id))
    return tasks, effects


def _acting_roles(step: Step) -> frozenset[str]:
    """The roles that do a step's work: its lane, plus the owner of an external step."""
    if step.kind is StepKind.EXTERNAL and step.owner is not None:
        return frozenset({step.lane, step.owner})
    return frozenset({step.lane})


def _check_may_assign(
    ctx: _Context, step: Step, task: TaskState, actor: Actor, action: str
) -> None:
    acting = _acting_roles(step)
    allowed = acting | ctx.above(acting)
    if actor.is_worker or not actor.roles & allowed:
        raise LaneForbidden(action, allowed, task_id=task.id, step_id=step.id)


def _check_assignee(task: TaskState, actor: Actor) -> None:
    if task.assignee is not None and task.assignee != actor.sub:
        raise NotAssignee(task.id, task.assignee)


def open_task_of_step(
    definition: SopDefinition, snapshot: InstanceState, step_id: str
) -> TaskState:
    """The open task of a step, for callers that name the step rather than the task.

    A step outside the SOP is not found (404); a step of the SOP without an open task
    is a conflict (409), whether it is not reached yet or its task was just completed
    by someone else."""
    if step_id not in definition.step_ids():
        raise StepNotFound(step_id, _label(definition))
    latest = None
    for task in snapshot.tasks:
        if task.step_id == step_id:
            if task.is_open:
                return task
            latest = task
    raise StepNotOpen(
        step_id, latest.id if latest else None, latest.status.value if latest else None
    )


def _open_task(snapshot: InstanceState, task_id: str) -> TaskState:
    task = snapshot.task(task_id)
    if task is None:
        raise TaskNotFound(task_id)
    if not task.is_open:
        raise TaskNotOpen(task.id, task.status)
    return task


def _with_task(snapshot: InstanceState, changed: TaskState) -> tuple[TaskState, ...]:
    return tuple(changed if task.id == changed.id else task for task in snapshot.tasks)


def _decision(snapshot: InstanceState, tasks: tuple[TaskState, ...], effect: Effect) -> Decision:
    state = replace(snapshot, version=snapshot.version + 1, tasks=tasks)
    return Decision(state=state, effects=(effect,))


def _filled(text: str | None) -> bool:
    return text is not None and text.strip() != ""


def _label(definition: SopDefinition) -> str:
    return f"{definition.code} v{definition.version}"
