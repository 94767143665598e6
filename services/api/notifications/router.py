"""`/v1/notifications`: the log of what people were told, by which channel, and how it
went. An admin reads the messages of the people of its satker and those below it; anyone
else reads their own."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.api.deps import Context, CurrentActor, Session
from services.api.problems import problem_responses
from services.core.notifications import service as notifications
from services.core.people import service as people
from services.core.people.service import USERNAME_PATTERN

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])

Status = Literal["queued", "sent", "failed", "skipped"]
Channel = Literal["email", "whatsapp", "telegram"]


class NotificationPublic(BaseModel):
    id: int
    person: str
    satker: str
    channel: Channel
    kind: str = Field(description="What it is about, e.g. `task_opened`, `overdue`.")
    event_type: str = Field(description="The event that made it (see the webhook events).")
    instance_id: str | None
    task_id: str | None
    subject: str
    digest: bool = Field(description="Sent in the person's daily digest.")
    status: Status = Field(
        description="`queued` (waits for `next_attempt_at`: a retry, working hours, the "
        "digest), `sent`, `failed` (with `last_error`), `skipped` (no longer needed, or "
        "the channel is not configured: `last_error` says which)."
    )
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime


class NotificationPage(BaseModel):
    items: list[NotificationPublic]
    next_before: int | None = Field(
        description="Pass as `before` for the next (older) page; null on the last one."
    )


@router.get(
    "",
    response_model=NotificationPage,
    summary="What people were told (admin: your satkers' people; else your own)",
    responses=problem_responses(401, 404, 422),
)
async def list_notifications(
    actor: CurrentActor,
    context: Context,
    session: Session,
    person: Annotated[
        str | None, Query(pattern=USERNAME_PATTERN, description="Only this person's.")
    ] = None,
    status: Status | None = None,
    channel: Channel | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="`next_before`")] = None,
    limit: Annotated[int, Query(ge=1, le=notifications.MAX_PAGE)] = 50,
) -> NotificationPage:
    directory = await context.services.directory(session, actor.satker)
    if people.is_admin_of(directory, actor, actor.satker):
        satkers = directory.visible_from(actor.satker)
        if person is not None:
            # Someone outside the admin's courts is as unknown as a missing person.
            await people.visible_person(session, directory, actor, person)
    else:
        if person is not None and person != actor.sub:
            raise people.PersonNotFound(f"No person {person!r} of yours")
        satkers, person = {actor.satker}, actor.sub
    found, next_before = await notifications.listing(
        session,
        satkers,
        username=person,
        status=status,
        channel=channel,
        before=before,
        limit=limit,
    )
    return NotificationPage(
        items=[
            NotificationPublic(person=fields.pop("username"), **fields)
            for fields in (asdict(item) for item in found)
        ],
        next_before=next_before,
    )
