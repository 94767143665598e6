"""Queries over the stored catalog."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.catalog.models import RoleRecord, SopDefinitionRecord

_code = col(SopDefinitionRecord.code)
_version = col(SopDefinitionRecord.version)
_is_current = col(SopDefinitionRecord.is_current)


async def current_definitions(session: AsyncSession) -> Sequence[SopDefinitionRecord]:
    query = (
        select(SopDefinitionRecord)
        .where(_is_current == sa.true())
        .order_by(col(SopDefinitionRecord.number), _code)
    )
    return (await session.scalars(query)).all()


async def find_definition(
    session: AsyncSession, code: str, version: int | None = None
) -> SopDefinitionRecord | None:
    query = select(SopDefinitionRecord).where(_code == code)
    query = query.where(_is_current == sa.true() if version is None else _version == version)
    return (await session.scalars(query)).one_or_none()


async def code_for_number(session: AsyncSession, number: int) -> str | None:
    query = select(_code).where(col(SopDefinitionRecord.number) == number, _is_current == sa.true())
    return (await session.scalars(query)).first()


async def versions_of(session: AsyncSession, code: str) -> list[int]:
    query = select(_version).where(_code == code).order_by(_version)
    return list((await session.scalars(query)).all())


async def all_versions(session: AsyncSession) -> dict[str, list[int]]:
    query = select(_code, _version).order_by(_code, _version)
    versions: dict[str, list[int]] = defaultdict(list)
    for code, version in (await session.execute(query)).all():
        versions[code].append(version)
    return versions


async def make_newest_current(session: AsyncSession, code: str) -> int:
    newest = max(await versions_of(session, code))
    await session.execute(
        sa.update(SopDefinitionRecord).where(_code == code).values(is_current=_version == newest)
    )
    return newest


async def count_current(session: AsyncSession) -> int:
    query = select(sa.func.count()).select_from(SopDefinitionRecord).where(_is_current == sa.true())
    return (await session.scalars(query)).one()


async def all_roles(session: AsyncSession) -> Sequence[RoleRecord]:
    return (await session.scalars(select(RoleRecord).order_by(col(RoleRecord.id)))).all()
