"""Moving a running instance to another version of its SOP: a plan first (what happens
to each task), then the move itself as a decision with an `instance.migrated` effect.

Each task that is open or completed must land on a step of the new version: the step the
`step_map` names for it, or else the step of the same id, if the new version has one. A
task whose step has no place in the new version refuses the migration, and so does one
whose new step belongs to another lane (other people would hold an open task, or have
done a completed one) unless the caller accepts lane changes explicitly. Cancelled tasks
are history that no step follows from: they move where they can and stay where they
cannot. Nothing else changes: deadlines stay as they were computed, the audit chain goes
on, and the instance keeps its id and its tasks theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from services.core.engine.definition import SopDefinition, Step
from services.core.engine.errors import DomainError
from services.core.engine.state import (
    ADMIN_ROLE,
    Actor,
    Decision,
    InstanceMigrated,
    InstanceState,
    TaskState,
    TaskStatus,
)

Verdict = Literal["same", "mapped", "lane_changed", "no_step", "left"]


class MigrationRefused(DomainError):
    code = "migration_refused"
    status = 422


class MigrationForbidden(DomainError):
    code = "migration_forbidden"
    status = 403


class SameVersion(DomainError):
    code = "already_at_version"
    status = 409


@dataclass(frozen=True)
class TaskMove:
    """What the migration does to one task."""

    task_id: str
    status: str
    from_step: str
    to_step: str | None
    from_lane: str
    to_lane: str | None
    verdict: Verdict


@dataclass(frozen=True)
class MigrationPlan:
    instance_id: str
    from_version: int
    to_version: int
    moves: tuple[TaskMove, ...]
    problems: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.problems


def plan(
    snapshot: InstanceState,
    old: SopDefinition,
    new: SopDefinition,
    step_map: Mapping[str, str],
    *,
    accept_lane_changes: bool = False,
) -> MigrationPlan:
    if new.code != snapshot.sop_code:
        raise MigrationRefused(
            f"version {new.version} is of SOP {new.code}, not {snapshot.sop_code}"
        )
    if new.version == snapshot.sop_version:
        raise SameVersion(f"the instance is at version {new.version} already")
    old_steps = {step.id: step for step in old.steps}
    new_steps = {step.id: step for step in new.steps}
    unknown = sorted(set(step_map) - set(old_steps))
    problems = [f"step_map names {s!r}, which is no step of version {old.version}" for s in unknown]
    problems += [
        f"step_map maps {source!r} to {target!r}, which is no step of version {new.version}"
        for source, target in sorted(step_map.items())
        if target not in new_steps
    ]
    moves = []
    for task in snapshot.tasks:
        move = _move(task, step_map, new_steps, accept_lane_changes)
        moves.append(move)
        if move.verdict == "no_step":
            problems.append(
                f"the {task.status.value} task {task.id} of step {task.step_id!r} has no step "
                f"in version {new.version}: map it in step_map"
            )
        elif move.verdict == "lane_changed":
            problems.append(
                f"the {task.status.value} task {task.id} would move from lane "
                f"{move.from_lane!r} to {move.to_lane!r}: set accept_lane_changes to do so"
            )
    return MigrationPlan(
        instance_id=snapshot.id,
        from_version=snapshot.sop_version,
        to_version=new.version,
        moves=tuple(moves),
        problems=tuple(problems),
    )


def _move(
    task: TaskState, step_map: Mapping[str, str], new_steps: Mapping[str, Step], accept: bool
) -> TaskMove:
    target_id = step_map.get(task.step_id, task.step_id)
    target = new_steps.get(target_id)
    verdict: Verdict
    if target is None:
        verdict = "left" if task.status is TaskStatus.CANCELLED else "no_step"
    elif target.lane != task.lane and task.status is not TaskStatus.CANCELLED and not accept:
        verdict = "lane_changed"
    else:
        verdict = "same" if target_id == task.step_id and target.lane == task.lane else "mapped"
    return TaskMove(
        task_id=task.id,
        status=task.status.value,
        from_step=task.step_id,
        to_step=target.id if target else None,
        from_lane=task.lane,
        to_lane=target.lane if target else None,
        verdict=verdict,
    )


def migrate(
    snapshot: InstanceState,
    old: SopDefinition,
    new: SopDefinition,
    actor: Actor,
    step_map: Mapping[str, str],
    *,
    accept_lane_changes: bool = False,
) -> Decision:
    """The instance on version `new`: each task on its new step (and that step's lane
    and kind); `MigrationRefused` with every problem when the plan does not allow it."""
    if not (actor.is_worker or ADMIN_ROLE in actor.roles):
        raise MigrationForbidden("only an admin may migrate an instance to another version")
    if not snapshot.is_active:
        raise MigrationRefused(f"instance {snapshot.id} is {snapshot.status.value}")
    planned = plan(snapshot, old, new, step_map, accept_lane_changes=accept_lane_changes)
    if not planned.allowed:
        raise MigrationRefused("; ".join(planned.problems), problems=list(planned.problems))
    steps = {step.id: step for step in new.steps}
    tasks = []
    for task, move in zip(snapshot.tasks, planned.moves, strict=True):
        if move.to_step is None:
            tasks.append(task)
            continue
        step = steps[move.to_step]
        tasks.append(replace(task, step_id=step.id, lane=step.lane, kind=step.kind))
    state = replace(
        snapshot, sop_version=new.version, version=snapshot.version + 1, tasks=tuple(tasks)
    )
    effect = InstanceMigrated(
        from_version=snapshot.sop_version,
        to_version=new.version,
        moves=tuple(
            {"task_id": move.task_id, "from_step": move.from_step, "to_step": move.to_step}
            for move in planned.moves
            if move.to_step is not None and move.to_step != move.from_step
        ),
    )
    return Decision(state=state, effects=(effect,))
