"""`/v1/people`: the people of the satkers, their acting assignments, their TOTP.

An admin manages the people of its satker and of the satkers below it; anyone else's
person answers 404, like a missing one. A person reads their own record, edits their
own contacts, changes their own password and enrols their own authenticator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.context import AppContext
from services.api.deps import Admin, Context, CurrentActor, Session, Work
from services.api.people.schemas import (
    ActingCreate,
    ActingList,
    ActingPublic,
    PasswordChange,
    PersonCreate,
    PersonPage,
    PersonPublic,
    PersonUpdate,
    TotpBegin,
    TotpConfirm,
    TotpSecret,
)
from services.api.problems import problem_responses
from services.core.auth import accounts, passwords, totp
from services.core.auth import service as auth
from services.core.db import utcnow
from services.core.engine.state import Actor
from services.core.people import acting
from services.core.people import service as people
from services.core.people.service import USERNAME_PATTERN
from services.core.satkers.service import SatkerDirectory

if TYPE_CHECKING:
    from services.core.people.models import PersonRecord

router = APIRouter(prefix="/v1/people", tags=["people"])

# Path and query values reach the database: only what such a value can be is let in.
UsernamePath = Annotated[str, Path(pattern=USERNAME_PATTERN, description="The username.")]
ActingId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="The assignment's id.")]
SatkerQuery = Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")]
RoleQuery = Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,64}$")]
AfterQuery = Annotated[str | None, Query(pattern=USERNAME_PATTERN, description="`next_after`")]

PERSON = "/{username}"


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _directory(context: AppContext, session: AsyncSession, actor: Actor) -> SatkerDirectory:
    return await context.services.directory(session, actor.satker)


async def _administered(
    context: AppContext, session: AsyncSession, actor: Actor, username: str
) -> tuple[SatkerDirectory, PersonRecord]:
    """The person if the actor administers their satker; 404 otherwise."""
    directory = await _directory(context, session, actor)
    person = await people.get(session, username)
    if person is None or not people.is_admin_of(directory, actor, person.satker_id):
        raise people.PersonNotFound(f"No person {username!r}")
    return directory, person


async def _own(session: AsyncSession, actor: Actor, username: str) -> PersonRecord:
    """The caller's own record (404 for anyone else's: these are self-service)."""
    person = await people.get(session, username)
    if person is None or person.username != actor.sub:
        raise people.PersonNotFound(f"No person {username!r} of yours")
    return person


@router.get(
    "",
    response_model=PersonPage,
    summary="The people of the satkers you administer (admin)",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_people(
    actor: Admin,
    context: Context,
    session: Session,
    satker: SatkerQuery = None,
    role: RoleQuery = None,
    active: bool | None = None,
    after: AfterQuery = None,
    limit: Annotated[int, Query(ge=1, le=people.MAX_PAGE)] = 100,
) -> PersonPage:
    directory = await _directory(context, session, actor)
    if satker is not None:
        satkers = {people.admin_satker(directory, actor, satker)}
    else:
        satkers = directory.visible_from(actor.satker)
    found, next_after = await people.listing(
        session, satkers, role=role, active=active, after=after, limit=limit
    )
    return PersonPage(items=[PersonPublic.of(p) for p in found], next_after=next_after)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PersonPublic,
    summary="Add a person (admin of their satker or of a court above it)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_person(
    body: PersonCreate, actor: Admin, context: Context, work: Work, response: Response
) -> PersonPublic:
    directory = await _directory(context, work.session, actor)
    satker = people.admin_satker(directory, actor, body.satker or actor.satker)
    password_hash = (
        await passwords.hash_password(context.settings.auth, body.password)
        if body.password is not None
        else None
    )
    person = await people.create(
        work.session,
        username=body.username,
        satker=satker,
        name=body.name,
        roles=body.roles,
        known_roles=context.services.roles,
        nip=body.nip,
        email=body.email,
        whatsapp=body.whatsapp,
        telegram_chat_id=body.telegram_chat_id,
        notify_channels=body.notify_channels,
        notify_digest=body.notify_digest,
        active=body.active,
        password_hash=password_hash,
        now=utcnow(),
    )
    response.headers["Location"] = f"/v1/people/{person.username}"
    return PersonPublic.of(person)


@router.get(
    PERSON,
    response_model=PersonPublic,
    summary="A person (yourself, or one you administer)",
    responses=problem_responses(401, 404),
)
async def get_person(
    username: UsernamePath, actor: CurrentActor, context: Context, session: Session
) -> PersonPublic:
    directory = await _directory(context, session, actor)
    return PersonPublic.of(await people.visible_person(session, directory, actor, username))


@router.patch(
    PERSON,
    response_model=PersonPublic,
    summary="Change a person (admin), or your own contacts",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_person(
    username: UsernamePath, body: PersonUpdate, actor: CurrentActor, context: Context, work: Work
) -> PersonPublic:
    directory = await _directory(context, work.session, actor)
    person = await people.visible_person(work.session, directory, actor, username)
    changes = body.changes()
    people.check_changes(directory, actor, person, changes)
    await accounts.update_person(
        work.session, person, changes, known_roles=context.services.roles, now=utcnow()
    )
    if "active" in changes:
        work.after_commit.append(context.acting.forget)
    return PersonPublic.of(person)


@router.post(
    f"{PERSON}/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a password: your own (with the current one), or as an admin",
    description="Every refresh token of the person is revoked: their other sessions end "
    "when their access tokens expire.",
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def change_password(
    username: UsernamePath,
    body: PasswordChange,
    actor: CurrentActor,
    context: Context,
    work: Work,
    request: Request,
) -> None:
    directory = await _directory(context, work.session, actor)
    person = await people.visible_person(work.session, directory, actor, username)
    if person.username == actor.sub:
        if body.current_password is None:
            raise auth.WrongPassword("Give your current password (current_password)")
        await auth.check_password(
            context.sign_in, person, body.current_password, address=_address(request)
        )
    password_hash = await passwords.hash_password(context.settings.auth, body.new_password)
    await accounts.set_password(work.session, person, password_hash, now=utcnow())


@router.post(
    f"{PERSON}/acting",
    status_code=status.HTTP_201_CREATED,
    response_model=ActingPublic,
    summary="Make the person an acting official (Plh/Plt) for a period (admin)",
    description="From `from` until `to` the person holds `role` in `satker` for tasks, the "
    "inbox, escalation and notifications; every action taken under it is recorded in the "
    "audit trail as `acting_for`. It ends by itself.",
    responses=problem_responses(401, 403, 404, 422),
)
async def create_acting(
    username: UsernamePath,
    body: ActingCreate,
    actor: Admin,
    context: Context,
    work: Work,
    response: Response,
) -> ActingPublic:
    directory, person = await _administered(context, work.session, actor, username)
    satker = people.admin_satker(directory, actor, body.satker or person.satker_id)
    now = utcnow()
    record = await acting.create(
        work.session,
        directory,
        person,
        role=body.role,
        satker=satker,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        kind=body.kind,
        reason=body.reason,
        holder=body.holder,
        known_roles=context.services.roles,
        created_by=actor.sub,
        now=now,
    )
    work.after_commit.append(context.acting.forget)
    response.headers["Location"] = f"/v1/people/{username}/acting/{record.id}"
    return ActingPublic.of(record, now)


@router.get(
    f"{PERSON}/acting",
    response_model=ActingList,
    summary="The person's acting assignments, newest first",
    responses=problem_responses(401, 404),
)
async def list_acting(
    username: UsernamePath, actor: CurrentActor, context: Context, session: Session
) -> ActingList:
    directory = await _directory(context, session, actor)
    person = await people.visible_person(session, directory, actor, username)
    now = utcnow()
    records = await acting.of_person(session, person.username)
    return ActingList(items=[ActingPublic.of(record, now) for record in records])


@router.delete(
    f"{PERSON}/acting/{{acting_id}}",
    response_model=ActingPublic,
    summary="End an acting assignment now (admin)",
    responses=problem_responses(401, 403, 404),
)
async def end_acting(
    username: UsernamePath, acting_id: ActingId, actor: Admin, context: Context, work: Work
) -> ActingPublic:
    directory, person = await _administered(context, work.session, actor, username)
    record = await acting.get(work.session, person.username, acting_id)
    people.admin_satker(directory, actor, record.satker_id)
    now = utcnow()
    await acting.end(work.session, record, by=actor.sub, now=now)
    work.after_commit.append(context.acting.forget)
    return ActingPublic.of(record, now)


@router.post(
    f"{PERSON}/totp",
    status_code=status.HTTP_201_CREATED,
    response_model=TotpSecret,
    summary="Start enrolling your authenticator (TOTP); confirm with a code",
    responses=problem_responses(401, 403, 404, 409, 422, 429),
)
async def begin_totp(
    username: UsernamePath,
    body: TotpBegin,
    actor: CurrentActor,
    context: Context,
    work: Work,
    request: Request,
) -> TotpSecret:
    person = await _own(work.session, actor, username)
    await auth.check_password(context.sign_in, person, body.password, address=_address(request))
    secret = await auth.begin_totp(work.session, person, utcnow())
    return TotpSecret(secret=secret, otpauth_uri=totp.provisioning_uri(secret, person.username))


@router.post(
    f"{PERSON}/totp/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Confirm the enrolment with a code: from now on sign-in asks for one",
    responses=problem_responses(401, 404, 409, 422),
)
async def confirm_totp(
    username: UsernamePath, body: TotpConfirm, actor: CurrentActor, work: Work
) -> None:
    person = await _own(work.session, actor, username)
    await auth.confirm_totp(work.session, person, body.code, utcnow())


@router.delete(
    f"{PERSON}/totp",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Turn TOTP off for a person (admin; e.g. a lost phone)",
    responses=problem_responses(401, 403, 404),
)
async def disable_totp(username: UsernamePath, actor: Admin, context: Context, work: Work) -> None:
    _, person = await _administered(context, work.session, actor, username)
    await auth.disable_totp(work.session, person, utcnow())
