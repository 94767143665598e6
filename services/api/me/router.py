"""`/v1/me`: the caller as the token and today's acting assignments make them;
`/v1/overview`: open and overdue work per SOP and per person, for heads of work."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from services.api.deps import Context, CurrentActor, RoleRequired, Session, satker_in_scope
from services.api.instances.inbox import inbox_tasks
from services.api.instances.schemas import InboxTask
from services.api.openapi import answers
from services.api.problems import problem_responses
from services.core.catalog import service as catalog
from services.core.db import utcnow
from services.core.engine.state import Actor
from services.core.instances import queries

router = APIRouter(tags=["me"])

ADMIN_ROLE = "admin"
MAX_ESCALATED = 50


class SatkerRef(BaseModel):
    id: str
    name: str
    timezone: str


class RoleRef(BaseModel):
    id: str
    name: str


class ActingGrant(BaseModel):
    role: str
    role_name: str
    satker: str
    kind: str = Field(description="`plh` (a short absence) or `plt` (a vacancy).")
    holder: str | None = Field(description="Whom the caller stands in for, when known.")


class MePublic(BaseModel):
    sub: str
    name: str | None
    satker: SatkerRef
    roles: list[RoleRef]
    acting: list[ActingGrant]
    admin: bool
    supervisor: bool = Field(description="Heads work: may read `GET /v1/overview`.")


def _role_name(context: Context, role_id: str) -> str:
    role = context.services.roles.get(role_id)
    return role.name if role is not None else role_id


def is_supervisor(context: Context, actor: Actor) -> bool:
    held = set(actor.roles) | {grant.role for grant in actor.acting}
    if ADMIN_ROLE in held:
        return True
    return any(
        role is not None and role.supervisor
        for role in (context.services.roles.get(role_id) for role_id in held)
    )


@router.get(
    "/v1/me",
    response_model=MePublic,
    summary="Who you are: your satker, roles and acting roles",
    name="get_me",
    responses=problem_responses(401),
)
async def me(actor: CurrentActor, context: Context, session: Session) -> MePublic:
    satker = await satker_in_scope(context, session, actor, actor.satker)
    return MePublic(
        sub=actor.sub,
        name=actor.name,
        satker=SatkerRef(id=satker.id, name=satker.name, timezone=satker.timezone),
        roles=[RoleRef(id=role, name=_role_name(context, role)) for role in sorted(actor.roles)],
        acting=[
            ActingGrant(
                role=grant.role,
                role_name=_role_name(context, grant.role),
                satker=grant.satker,
                kind=grant.kind,
                holder=grant.holder,
            )
            for grant in actor.acting
        ],
        admin=ADMIN_ROLE in actor.roles,
        supervisor=is_supervisor(context, actor),
    )


class WorkCount(BaseModel):
    open: int
    overdue: int
    escalated: int


class SopWork(WorkCount):
    sop: str
    sop_number: int
    sop_title: str


class PersonWork(WorkCount):
    assignee: str


class LaneWork(WorkCount):
    lane: str
    lane_name: str


class SatkerWork(WorkCount):
    satker: str
    name: str


class Overview(BaseModel):
    satker: str
    generated_at: datetime
    total: WorkCount
    by_satker: list[SatkerWork]
    by_sop: list[SopWork]
    by_person: list[PersonWork] = Field(description="Open tasks someone has taken.")
    unassigned_by_lane: list[LaneWork] = Field(description="Open tasks nobody has taken.")
    escalated: list[InboxTask] = Field(description="Escalated open tasks, highest level first.")


class _Tally:
    def __init__(self) -> None:
        self.open = self.overdue = self.escalated = 0

    def add(self, row: queries.WorkloadRow) -> None:
        self.open += row.open
        self.overdue += row.overdue
        self.escalated += row.escalated

    def counts(self) -> dict[str, int]:
        return {"open": self.open, "overdue": self.overdue, "escalated": self.escalated}


class NotSupervisor(RoleRequired):
    title = "The overview is for heads of work"


@answers(403)
async def require_supervisor(actor: CurrentActor, context: Context) -> Actor:
    if not is_supervisor(context, actor):
        raise NotSupervisor("The overview is for the Kasubbag and above (or an admin)")
    return actor


Supervisor = Annotated[Actor, Depends(require_supervisor)]


@router.get(
    "/v1/overview",
    response_model=Overview,
    summary="Open and overdue work per SOP and per person in a satker and below (heads)",
    name="get_overview",
    responses=problem_responses(401, 403, 404, 422),
)
async def overview(
    actor: Supervisor,
    context: Context,
    session: Session,
    satker: Annotated[
        str | None,
        Query(max_length=64, description="A satker you can see; default: your own."),
    ] = None,
) -> Overview:
    target = await satker_in_scope(context, session, actor, satker or actor.satker)
    directory = await context.services.directory(session, target.id)
    scope = directory.visible_from(target.id)
    now = utcnow()
    rows = await queries.workload(session, scope, now)
    total = _Tally()
    by_satker: defaultdict[str, _Tally] = defaultdict(_Tally)
    by_sop: defaultdict[str, _Tally] = defaultdict(_Tally)
    by_person: defaultdict[str, _Tally] = defaultdict(_Tally)
    by_lane: defaultdict[str, _Tally] = defaultdict(_Tally)
    for row in rows:
        total.add(row)
        by_satker[row.satker].add(row)
        by_sop[row.sop].add(row)
        if row.assignee is not None:
            by_person[row.assignee].add(row)
        else:
            by_lane[row.lane].add(row)
    sops = []
    for code, tally in by_sop.items():
        definition = await catalog.get_definition(session, code, None)
        sops.append(
            SopWork(
                sop=code, sop_number=definition.number, sop_title=definition.title, **tally.counts()
            )
        )
    late = await queries.escalated_tasks(session, scope, MAX_ESCALATED)
    escalated = await inbox_tasks(context.services, session, directory, late, now)
    return Overview(
        satker=target.id,
        generated_at=now,
        total=WorkCount(**total.counts()),
        by_satker=[
            SatkerWork(satker=key, name=directory.get(key).name, **tally.counts())
            for key, tally in sorted(by_satker.items())
        ],
        by_sop=sorted(sops, key=lambda item: item.sop_number),
        by_person=[
            PersonWork(assignee=key, **tally.counts())
            for key, tally in sorted(by_person.items(), key=lambda kv: (-kv[1].overdue, kv[0]))
        ],
        unassigned_by_lane=[
            LaneWork(lane=key, lane_name=_role_name(context, key), **tally.counts())
            for key, tally in sorted(by_lane.items(), key=lambda kv: (-kv[1].overdue, kv[0]))
        ],
        escalated=escalated,
    )
