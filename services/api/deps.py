"""Request dependencies as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.context import AppContext
from services.core.db import unit_of_work


def get_context(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.context)


Context = Annotated[AppContext, Depends(get_context)]


async def get_session(context: Context) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed when the handler returns, rolled back on error."""
    async with unit_of_work(context.sessions) as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]
