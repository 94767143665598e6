"""Satkers (courts) and their working-calendar overrides."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import Admin, Context, CurrentActor, Session, Work, satker_in_scope
from services.api.problems import problem_responses
from services.core.db import utcnow
from services.core.satkers import service as satkers
from services.core.validation import StrictBody, TimeZoneName

router = APIRouter(prefix="/v1/satkers", tags=["satkers"])


class SatkerCreate(StrictBody):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", examples=["pn-curup"])
    name: str = Field(min_length=1, max_length=200, examples=["Pengadilan Negeri Curup"])
    parent: str | None = Field(default=None, max_length=64, examples=["pt-bengkulu"])
    lane_role: str | None = Field(
        default=None,
        max_length=64,
        description="The lane this court acts in on its children (e.g. `pt`).",
    )
    timezone: TimeZoneName = "Asia/Jakarta"


class SatkerPublic(BaseModel):
    id: str
    name: str
    parent: str | None
    lane_role: str | None
    timezone: str


class SatkerList(BaseModel):
    items: list[SatkerPublic]


# One span of working hours, "HH:MM-HH:MM".
Span = Annotated[str, Field(pattern=r"^[0-9]{2}:[0-9]{2}-[0-9]{2}:[0-9]{2}$")]
# A weekday (special hours) or `hours` (an extra working day).
HoursKey = Annotated[
    str, Field(pattern="^(monday|tuesday|wednesday|thursday|friday|saturday|sunday|hours)$")
]
# Calendars are computed day by day from their start: keep dates where that is cheap.
CalendarDate = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]


class OverrideCreate(StrictBody):
    kind: Literal["day_off", "extra_working_day", "special_hours"]
    start_date: CalendarDate
    end_date: CalendarDate
    hours: dict[HoursKey, list[Span]] | None = Field(
        default=None,
        description='special_hours: {"monday": ["08:00-12:00", "12:30-15:00"], ...}; '
        'extra_working_day: {"hours": ["08:00-12:00"]}.',
    )
    reason: str = Field(min_length=1, max_length=300)


class OverridePublic(OverrideCreate):
    model_config = ConfigDict(from_attributes=True)

    id: int


class OverrideList(BaseModel):
    items: list[OverridePublic]


@router.get("", response_model=SatkerList, summary="Your satker and the ones below it")
async def list_satkers(actor: CurrentActor, context: Context, session: Session) -> SatkerList:
    directory = await context.services.directory(session, actor.satker)
    visible = directory.visible_from(actor.satker)
    return SatkerList(
        items=[
            SatkerPublic(
                id=s.id, name=s.name, parent=s.parent_id, lane_role=s.lane_role, timezone=s.timezone
            )
            for s in directory.all()
            if s.id in visible
        ]
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SatkerPublic,
    summary="Add a satker (admin)",
    responses=problem_responses(404, 409),
)
async def create_satker(
    body: SatkerCreate, actor: Admin, context: Context, work: Work
) -> SatkerPublic:
    record = await satkers.create_satker(
        work.session,
        satker_id=body.id,
        name=body.name,
        parent_id=body.parent,
        lane_role=body.lane_role,
        timezone=body.timezone,
        now=utcnow(),
    )
    context.services.forget_directory()
    return SatkerPublic(
        id=record.id,
        name=record.name,
        parent=record.parent_id,
        lane_role=record.lane_role,
        timezone=record.timezone,
    )


@router.get(
    "/{satker_id}/calendar-overrides",
    response_model=OverrideList,
    summary="Local days off, extra working days and special hours",
    name="list_calendar_overrides",
    responses=problem_responses(404),
)
async def list_overrides(
    satker_id: str, actor: CurrentActor, context: Context, session: Session
) -> OverrideList:
    satker = await satker_in_scope(context, session, actor, satker_id)
    records = await satkers.list_overrides(session, satker.id)
    return OverrideList(items=[OverridePublic.model_validate(r) for r in records])


@router.post(
    "/{satker_id}/calendar-overrides",
    status_code=status.HTTP_201_CREATED,
    response_model=OverridePublic,
    summary="Add a calendar override (admin); deadlines opened from then on follow it",
    name="add_calendar_override",
    responses=problem_responses(404),
)
async def add_override(
    satker_id: str, body: OverrideCreate, actor: Admin, context: Context, work: Work
) -> OverridePublic:
    satker = await satker_in_scope(context, work.session, actor, satker_id)
    record = await satkers.add_override(
        work.session,
        satker=satker,
        kind=body.kind,
        start_date=body.start_date,
        end_date=body.end_date,
        hours=body.hours,
        reason=body.reason,
        now=utcnow(),
    )
    context.services.calendars.invalidate(satker.id)
    return OverridePublic(id=record.id or 0, **body.model_dump())
