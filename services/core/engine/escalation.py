"""Deadline notices: due soon, overdue, and escalation up the `reports_to` chain.

The sweep asks, for one task (or one instance's procedure-level deadline), which
notices are due at `now`. Each level fires once: the state records how far it went,
and the optimistic version check of the instance service makes two sweeps racing on
the same task fire it once. Thresholds come in from the caller (they are working-time
multiples of the standard, a calendar matter).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from services.core.engine.definition import Role, SopDefinition, StepKind
from services.core.engine.errors import LaneForbidden, NothingDue, TaskNotOpen, ValueRequired
from services.core.engine.state import (
    SYSTEM_WORKER,
    Decision,
    Effect,
    Escalate,
    Flag,
    InstanceDueSoon,
    InstanceEscalated,
    InstanceOverdue,
    InstanceState,
    TaskDueSoon,
    TaskEscalated,
    TaskFlagged,
    TaskOverdue,
    TaskState,
    is_overdue,
)


def chain_above(role_id: str, roles: Mapping[str, Role]) -> list[str]:
    """The roles above `role_id`, nearest first."""
    chain: list[str] = []
    role = roles.get(role_id)
    current = role.reports_to if role is not None else None
    while current is not None and current not in chain:
        chain.append(current)
        parent = roles.get(current)
        current = parent.reports_to if parent is not None else None
    return chain


def _plan(
    *,
    warn_at: datetime | None,
    due_at: datetime | None,
    warned_at: datetime | None,
    level: int,
    chain: Sequence[str],
    thresholds: Sequence[datetime],
    now: datetime,
) -> tuple[bool, list[int], datetime | None]:
    """(warn now?, levels to fire now, when to look again).

    `thresholds` do not decrease (level n + 1 never falls before level n): only the
    levels due now and the next one are looked at, since each may cost a working-time
    computation (the sweep computes them on demand)."""
    warn = warned_at is None and warn_at is not None and warn_at <= now
    if is_overdue(due_at, now):
        warn = False  # straight to overdue: a warning after the fact helps nobody
    top = min(len(chain), len(thresholds))
    fire = []
    reached = level
    while reached < top and thresholds[reached] <= now:
        reached += 1
        fire.append(reached)
    upcoming = [thresholds[reached]] if reached < top else []
    if warned_at is None and not warn and warn_at is not None and warn_at > now:
        upcoming.append(warn_at)
    return warn, fire, min(upcoming) if upcoming else None


def escalate(
    definition: SopDefinition,
    snapshot: InstanceState,
    command: Escalate,
    now: datetime,
    roles: Mapping[str, Role],
) -> Decision:
    if not command.actor.is_worker:
        raise LaneForbidden("escalating deadlines (the worker's job)", {SYSTEM_WORKER})
    if command.task_id is None:
        return _escalate_instance(definition, snapshot, command, now, roles)
    task = snapshot.task(command.task_id)
    if task is None or not task.is_open:
        raise TaskNotOpen(command.task_id, task.status if task else "missing")
    step = definition.step(task.step_id)
    # An outside party's lane has no chain of its own: chase through the internal owner.
    responsible = step.owner if step.kind is StepKind.EXTERNAL and step.owner else task.lane
    chain = chain_above(responsible, roles)
    warn, fire, next_check = _plan(
        warn_at=task.warn_at,
        due_at=task.due_at,
        warned_at=task.warned_at,
        level=task.escalation_level,
        chain=chain,
        thresholds=command.thresholds,
        now=now,
    )
    changed = replace(
        task,
        warned_at=task.warned_at or (now if warn or fire else None),
        escalation_level=fire[-1] if fire else task.escalation_level,
        next_check_at=next_check,
    )
    effects: list[Effect] = []
    if warn:
        effects.append(TaskDueSoon(task=changed))
    for level in fire:
        if level == 1:
            effects.append(TaskOverdue(task=changed))
        effects.append(TaskEscalated(task=changed, level=level, to_role=chain[level - 1]))
    if (changed.warned_at, changed.escalation_level, changed.next_check_at) == (
        task.warned_at,
        task.escalation_level,
        task.next_check_at,
    ):
        raise NothingDue(command.task_id)
    tasks = tuple(changed if t.id == task.id else t for t in snapshot.tasks)
    state = replace(snapshot, version=snapshot.version + 1, tasks=tasks)
    return Decision(state=state, effects=tuple(effects))


def _escalate_instance(
    definition: SopDefinition,
    snapshot: InstanceState,
    command: Escalate,
    now: datetime,
    roles: Mapping[str, Role],
) -> Decision:
    # The procedure belongs to its first lane; its supervisors are chased.
    chain = chain_above(definition.lanes[0], roles)
    warn, fire, next_check = _plan(
        warn_at=snapshot.warn_at,
        due_at=snapshot.due_at,
        warned_at=snapshot.warned_at,
        level=snapshot.escalation_level,
        chain=chain,
        thresholds=command.thresholds,
        now=now,
    )
    state = replace(
        snapshot,
        warned_at=snapshot.warned_at or (now if warn or fire else None),
        escalation_level=fire[-1] if fire else snapshot.escalation_level,
        next_check_at=next_check,
    )
    if state == snapshot:
        raise NothingDue(None)
    effects: list[Effect] = []
    if warn and snapshot.due_at is not None:
        effects.append(InstanceDueSoon(due_at=snapshot.due_at))
    for level in fire:
        if level == 1 and snapshot.due_at is not None:
            effects.append(InstanceOverdue(due_at=snapshot.due_at))
        effects.append(InstanceEscalated(level=level, to_role=chain[level - 1]))
    return Decision(state=replace(state, version=snapshot.version + 1), effects=tuple(effects))


def flag(snapshot: InstanceState, command: Flag) -> Decision:
    if not command.actor.is_worker:
        raise LaneForbidden("flagging a task (the worker's job)", {SYSTEM_WORKER})
    if not command.reason.strip():
        raise ValueRequired("reason")
    task = snapshot.task(command.task_id)
    if task is None or not task.is_open:
        raise TaskNotOpen(command.task_id, task.status if task else "missing")
    changed: TaskState = replace(task, flag=command.reason)
    tasks = tuple(changed if t.id == task.id else t for t in snapshot.tasks)
    state = replace(snapshot, version=snapshot.version + 1, tasks=tasks)
    return Decision(state=state, effects=(TaskFlagged(task=changed, reason=command.reason),))
