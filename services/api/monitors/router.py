"""Monitors (CRUD, checks, maintenance windows) and service renewals, per satker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.deps import (
    Context,
    CurrentActor,
    Session,
    Work,
    require_role,
    satker_in_scope,
    visible_satkers,
)
from services.api.monitors.schemas import (
    CheckList,
    CheckPublic,
    MonitorCreate,
    MonitorList,
    MonitorPublic,
    MonitorUpdate,
    RenewalCreate,
    RenewalList,
    RenewalPublic,
    WindowCreate,
    WindowList,
    WindowPublic,
)
from services.api.openapi import answers
from services.api.problems import problem_responses
from services.core.db import utcnow
from services.core.engine.state import Actor
from services.core.monitors import renewals
from services.core.monitors import service as monitors

if TYPE_CHECKING:
    from services.core.monitors.models import MonitorRecord

router = APIRouter(tags=["monitors"])


@answers(403)
async def _admin_or_webmaster(actor: CurrentActor) -> Actor:
    if {"admin", "admin_website"} & actor.roles:
        return actor
    return await require_role("admin")(actor)  # raises the role_required problem


Manager = Annotated[Actor, Depends(_admin_or_webmaster)]


async def _target(context: Context, session: AsyncSession, actor: Actor, satker: str | None) -> str:
    return (await satker_in_scope(context, session, actor, satker or actor.satker)).id


def _fields(body: MonitorCreate | MonitorUpdate, *, partial: bool) -> dict[str, Any]:
    data = body.model_dump(exclude_unset=partial, exclude={"satker"})
    urls = ("url", "feed_url")
    return {k: str(v) if k in urls and v is not None else v for k, v in data.items()}


async def _find(
    context: Context, session: AsyncSession, actor: Actor, monitor_id: str
) -> MonitorRecord:
    return await monitors.get_monitor(
        session, await visible_satkers(context, session, actor), monitor_id
    )


@router.post(
    "/v1/monitors",
    status_code=status.HTTP_201_CREATED,
    response_model=MonitorPublic,
    summary="Watch a website (admin or admin_website)",
    responses=problem_responses(404),
)
async def create_monitor(
    body: MonitorCreate, actor: Manager, context: Context, work: Work
) -> MonitorPublic:
    satker = await _target(context, work.session, actor, body.satker)
    fields = MonitorCreate.model_validate(body.model_dump()).model_dump(exclude={"satker"})
    fields = {
        k: str(v) if k in ("url", "feed_url") and v is not None else v for k, v in fields.items()
    }
    monitor = await monitors.create_monitor(
        work.session, satker_id=satker, fields=fields, now=utcnow()
    )
    return MonitorPublic.model_validate(monitor)


@router.get("/v1/monitors", response_model=MonitorList, summary="Monitors you can see")
async def list_monitors(actor: CurrentActor, context: Context, session: Session) -> MonitorList:
    records = await monitors.list_monitors(session, await visible_satkers(context, session, actor))
    return MonitorList(items=[MonitorPublic.model_validate(r) for r in records])


@router.get(
    "/v1/monitors/{monitor_id}",
    response_model=MonitorPublic,
    responses=problem_responses(404),
)
async def get_monitor(
    monitor_id: str, actor: CurrentActor, context: Context, session: Session
) -> MonitorPublic:
    return MonitorPublic.model_validate(await _find(context, session, actor, monitor_id))


@router.patch(
    "/v1/monitors/{monitor_id}",
    response_model=MonitorPublic,
    responses=problem_responses(404),
)
async def update_monitor(
    monitor_id: str, body: MonitorUpdate, actor: Manager, context: Context, work: Work
) -> MonitorPublic:
    monitor = await _find(context, work.session, actor, monitor_id)
    await monitors.update_monitor(work.session, monitor, _fields(body, partial=True))
    return MonitorPublic.model_validate(monitor)


@router.delete(
    "/v1/monitors/{monitor_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
)
async def delete_monitor(monitor_id: str, actor: Manager, context: Context, work: Work) -> Response:
    visible = await visible_satkers(context, work.session, actor)
    await monitors.delete_monitor(work.session, visible, monitor_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/v1/monitors/{monitor_id}/checks",
    response_model=CheckList,
    summary="The monitor's checks, newest first, with latency",
    name="list_monitor_checks",
    responses=problem_responses(404),
)
async def list_checks(
    monitor_id: str,
    actor: CurrentActor,
    context: Context,
    session: Session,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CheckList:
    monitor = await monitors.get_monitor(
        session, await visible_satkers(context, session, actor), monitor_id
    )
    records = await monitors.recent_checks(session, monitor, limit)
    return CheckList(items=[CheckPublic.model_validate(r) for r in records])


@router.post(
    "/v1/monitors/{monitor_id}/maintenance-windows",
    status_code=status.HTTP_201_CREATED,
    response_model=WindowPublic,
    summary="Checks in a window neither count as failures nor open incidents",
    name="add_maintenance_window",
    responses=problem_responses(404),
)
async def add_window(
    monitor_id: str, body: WindowCreate, actor: Manager, context: Context, work: Work
) -> WindowPublic:
    monitor = await _find(context, work.session, actor, monitor_id)
    record = await monitors.add_window(work.session, monitor, body.model_dump())
    return WindowPublic(id=record.id or 0, **body.model_dump())


@router.get(
    "/v1/monitors/{monitor_id}/maintenance-windows",
    response_model=WindowList,
    name="list_maintenance_windows",
    responses=problem_responses(404),
)
async def list_windows(
    monitor_id: str, actor: CurrentActor, context: Context, session: Session
) -> WindowList:
    monitor = await monitors.get_monitor(
        session, await visible_satkers(context, session, actor), monitor_id
    )
    records = await monitors.windows(session, monitor)
    return WindowList(items=[WindowPublic.model_validate(r, from_attributes=True) for r in records])


@router.post(
    "/v1/renewals",
    status_code=status.HTTP_201_CREATED,
    response_model=RenewalPublic,
    summary="A hosting, domain or connection service and its due date",
    responses=problem_responses(404),
)
async def create_renewal(
    body: RenewalCreate, actor: Manager, context: Context, work: Work
) -> RenewalPublic:
    satker = await _target(context, work.session, actor, body.satker)
    renewal = await renewals.create_renewal(
        work.session, satker_id=satker, fields=body.model_dump(exclude={"satker"}), now=utcnow()
    )
    return RenewalPublic.model_validate(renewal)


@router.get("/v1/renewals", response_model=RenewalList, summary="Renewals, soonest due first")
async def list_renewals(actor: CurrentActor, context: Context, session: Session) -> RenewalList:
    records = await renewals.list_renewals(session, await visible_satkers(context, session, actor))
    return RenewalList(items=[RenewalPublic.model_validate(r) for r in records])


@router.delete(
    "/v1/renewals/{renewal_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
)
async def delete_renewal(renewal_id: str, actor: Manager, context: Context, work: Work) -> Response:
    visible = await visible_satkers(context, work.session, actor)
    await renewals.delete_renewal(work.session, visible, renewal_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
