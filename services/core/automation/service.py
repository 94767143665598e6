"""Run an automated step: its handler decides, the instance service records it.

A handler looks at the instance and returns the outcome (at a decision), a note and
evidence; the task is then completed as `system:worker` through the same engine and
audit trail as a person's transition. A handler that keeps failing leaves the task
open and flagged, so a person does the step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.core.engine.errors import DomainError
from services.core.engine.state import Actor, Command, CompleteTask, Flag
from services.core.instances import service as instances
from services.core.instances.service import Applied, InstanceView
from services.core.shared import Services


@dataclass(frozen=True)
class StepResult:
    outcome: str | None = None
    note: str | None = None
    evidence: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[AsyncSession, InstanceView, str, datetime], Awaitable[StepResult]]


class StepCannotRun(Exception):
    """Retrying will not help (no handler, no configuration): a person must act."""


class UnknownJob(StepCannotRun, LookupError):
    pass


# The worker acts for every satker: the instance service lets it see all of them.
WORKER = Actor.worker()


async def run_step(
    session: AsyncSession,
    services: Services,
    handlers: Mapping[str, Handler],
    *,
    instance_id: str,
    task_id: str,
    job: str,
    now: datetime,
) -> Applied | None:
    """Run `job` for the open task and complete it; None when there is nothing to do
    (the task was already completed, by a person or an earlier try)."""
    view = await instances.get_view(session, services, WORKER, instance_id)
    task = view.state.task(task_id)
    if task is None or not task.is_open or not view.state.is_active:
        return None
    handler = handlers.get(job)
    if handler is None:
        raise UnknownJob(f"no handler for the job {job!r} of step {task.step_id!r}")
    result = await handler(session, view, task_id, now)

    def complete(_view: InstanceView, actor: Actor, ids: list[str]) -> Command:
        return CompleteTask(
            actor=actor,
            task_id=task_id,
            outcome=result.outcome,
            note=result.note,
            evidence=result.evidence,
            new_task_ids=ids,
        )

    return await instances.apply(
        session, services, WORKER, instance_id, complete, if_match=None, now=now
    )


async def flag_step(
    session: AsyncSession,
    services: Services,
    *,
    instance_id: str,
    task_id: str,
    reason: str,
    now: datetime,
) -> Applied | None:
    """Leave the task open for a person, saying why the job gave up."""

    def command(_view: InstanceView, actor: Actor, ids: list[str]) -> Command:
        return Flag(actor=actor, task_id=task_id, reason=reason)

    try:
        return await instances.apply(
            session, services, WORKER, instance_id, command, if_match=None, now=now
        )
    except DomainError:
        return None  # closed meanwhile: nobody needs the flag
