"""`/v1/tasks`: the caller's inbox, and claiming, assigning and releasing a task."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.api.deps import Context, CurrentActor, Session, Work
from services.api.instances.inbox import inbox_tasks
from services.api.instances.router import CommandFactory, _respond
from services.api.instances.schemas import (
    AssignCreate,
    InboxPage,
    InstancePublic,
)
from services.api.problems import problem_responses
from services.core.db import utcnow
from services.core.engine.errors import TaskNotFound
from services.core.engine.state import Assign, Claim, Release
from services.core.instances import queries
from services.core.instances import service as instances

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])


@router.get(
    "",
    response_model=InboxPage,
    summary="Open tasks: with mine=true those you can act on; overdue first",
    name="list_tasks",
)
async def inbox(
    actor: CurrentActor,
    context: Context,
    session: Session,
    mine: bool = True,
    sop: str | None = None,
    lane: str | None = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 100,
) -> InboxPage:
    now = utcnow()
    directory = await context.services.directory(session, actor.satker)
    rows = await queries.inbox(
        session, directory, actor, mine=mine, sop=sop, lane=lane, limit=limit, now=now
    )
    return InboxPage(items=await inbox_tasks(context.services, session, directory, rows, now))


async def _on_task(
    task_id: str,
    actor: CurrentActor,
    context: Context,
    work: Work,
    response: Response,
    make: CommandFactory,
) -> InstancePublic:
    instance_id = await queries.instance_of_task(work.session, task_id)
    if instance_id is None:
        raise TaskNotFound(task_id)
    now = utcnow()
    # `apply` hides instances of other satkers as not found, whatever the task id says.
    applied = await instances.apply(
        work.session, context.services, actor, instance_id, make, if_match=None, now=now
    )
    return _respond(context, work, applied, response, now)


@router.post(
    "/{task_id}/claim",
    response_model=InstancePublic,
    summary="Take an open task in your lane",
    name="claim_task",
    responses=problem_responses(403, 404, 409),
)
async def claim(
    task_id: str, actor: CurrentActor, context: Context, work: Work, response: Response
) -> InstancePublic:
    return await _on_task(
        task_id, actor, context, work, response,
        lambda _s, acting, _ids: Claim(actor=acting, task_id=task_id),
    )  # fmt: skip


@router.post(
    "/{task_id}/assign",
    response_model=InstancePublic,
    summary="Assign an open task to someone (lane members and those above them)",
    name="assign_task",
    responses=problem_responses(403, 404, 409),
)
async def assign(
    task_id: str,
    body: AssignCreate,
    actor: CurrentActor,
    context: Context,
    work: Work,
    response: Response,
) -> InstancePublic:
    return await _on_task(
        task_id, actor, context, work, response,
        lambda _s, acting, _ids: Assign(actor=acting, task_id=task_id, assignee_sub=body.assignee),
    )  # fmt: skip


@router.post(
    "/{task_id}/release",
    response_model=InstancePublic,
    summary="Give a claimed task back to its lane",
    name="release_task",
    responses=problem_responses(403, 404, 409),
)
async def release(
    task_id: str, actor: CurrentActor, context: Context, work: Work, response: Response
) -> InstancePublic:
    return await _on_task(
        task_id, actor, context, work, response,
        lambda _s, acting, _ids: Release(actor=acting, task_id=task_id),
    )  # fmt: skip
