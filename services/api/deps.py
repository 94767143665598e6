"""Request dependencies as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, cast

from fastapi import Depends, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.context import AppContext
from services.api.openapi import answers
from services.core.db import utcnow
from services.core.engine.state import Actor
from services.core.errors import AlurError
from services.core.identity.tokens import Principal, TokenMissing
from services.core.satkers.service import Satker, SatkerNotFound
from services.core.work import UnitOfWork


async def get_context(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.context)


Context = Annotated[AppContext, Depends(get_context)]


async def refuse_nul(request: Request) -> None:
    """U+0000 in the path, the query or a header value would reach the database as text,
    which PostgreSQL refuses: every route answers 422 instead (an app-wide dependency;
    request bodies are checked by `StrictBody`)."""
    scope = request.scope
    where = None
    if "\x00" in scope["path"]:
        where = "path"
    elif any("\x00" in key + value for key, value in request.query_params.multi_items()):
        where = "query"
    elif any(b"\x00" in value for _, value in scope["headers"]):
        where = "header"
    if where is not None:
        raise RequestValidationError(
            [{"loc": (where,), "msg": "may not contain U+0000", "type": "value_error"}]
        )


@answers(503)
async def get_session(context: Context) -> AsyncIterator[AsyncSession]:
    """A read-only request's transaction (see `services.core.db.unit_of_work`): on
    SQLite it reads beside the writers, never waiting for them. Requests that write take
    `Work`."""
    async with context.unit(read_only=True) as work:
        yield work.session


Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


@answers(503)
async def get_unit_of_work(context: Context) -> AsyncIterator[UnitOfWork]:
    """The request's unit of work (`AppContext.unit`): committed, then its jobs queued."""
    async with context.unit() as work:
        yield work


# "function" scope: the commit happens before the response is sent, so a client never
# sees success for a change that did not commit.
Work = Annotated[UnitOfWork, Depends(get_unit_of_work, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="A JWT with sub, roles, satker claims.")


@answers(401)
async def get_principal(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    if credentials is None:
        raise TokenMissing("A Bearer token is required (Authorization: Bearer <JWT>)")
    return await context.verifier.authenticate(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_actor(principal: CurrentPrincipal, context: Context) -> Actor:
    """The principal, with the roles it holds in someone's stead right now (checked at
    request time, whatever the token's age: `services.core.people.acting`)."""
    return Actor(
        sub=principal.sub,
        roles=principal.roles,
        satker=principal.satker,
        name=principal.name,
        acting=await context.acting.current(principal.sub, principal.satker, utcnow()),
    )


CurrentActor = Annotated[Actor, Depends(get_actor)]


class RoleRequired(AlurError):
    code = "role_required"
    status = 403
    title = "Your roles do not allow this"


def require_role(role: str) -> Callable[[Actor], Coroutine[Any, Any, Actor]]:
    @answers(403)
    async def check(actor: CurrentActor) -> Actor:
        if role not in actor.roles:
            raise RoleRequired(f"This needs the {role!r} role", extra={"required_role": role})
        return actor

    return check


Admin = Annotated[Actor, Depends(require_role("admin"))]


async def visible_satkers(context: AppContext, session: AsyncSession, actor: Actor) -> set[str]:
    """The caller's satker and every satker below it."""
    return (await context.services.directory(session, actor.satker)).visible_from(actor.satker)


async def satker_in_scope(
    context: AppContext, session: AsyncSession, actor: Actor, satker_id: str
) -> Satker:
    """The satker if the caller may see it; 404 otherwise (as if it did not exist)."""
    directory = await context.services.directory(session, actor.satker, satker_id)
    if satker_id not in directory.visible_from(actor.satker):
        raise SatkerNotFound(f"No satker {satker_id!r}")
    return directory.get(satker_id)
