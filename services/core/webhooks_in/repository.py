"""Queries over hook sources, inbound messages and started SIPP upgrades."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.webhooks_in.models import (
    HookSourceRecord,
    InboundMessageRecord,
    SippUpgradeRecord,
)


async def get_source(session: AsyncSession, name: str) -> HookSourceRecord | None:
    return await session.get(HookSourceRecord, name)


async def all_sources(session: AsyncSession) -> list[HookSourceRecord]:
    query = select(HookSourceRecord).order_by(col(HookSourceRecord.name))
    return list((await session.scalars(query)).all())


async def message_by_sender_id(
    session: AsyncSession, source: str, message_id: str
) -> InboundMessageRecord | None:
    query = select(InboundMessageRecord).where(
        col(InboundMessageRecord.source) == source,
        col(InboundMessageRecord.message_id) == message_id,
    )
    return (await session.scalars(query)).first()


async def lock_message(session: AsyncSession, message_id: str) -> InboundMessageRecord | None:
    """The message, locked (PostgreSQL) so two jobs never process it at once; the second
    waits and then reads the first one's final status."""
    return await session.get(
        InboundMessageRecord, message_id, with_for_update=True, populate_existing=True
    )


async def waiting_message_ids(
    session: AsyncSession, *, status: str, received_before: datetime, limit: int
) -> list[str]:
    query = (
        select(col(InboundMessageRecord.id))
        .where(
            col(InboundMessageRecord.status) == status,
            col(InboundMessageRecord.received_at) < received_before,
        )
        .order_by(col(InboundMessageRecord.received_at))
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def messages(
    session: AsyncSession, *, sources: Collection[str], status: str | None, limit: int
) -> list[InboundMessageRecord]:
    query = select(InboundMessageRecord).where(col(InboundMessageRecord.source).in_(sources))
    if status is not None:
        query = query.where(col(InboundMessageRecord.status) == status)
    query = query.order_by(
        col(InboundMessageRecord.received_at).desc(), col(InboundMessageRecord.id)
    ).limit(limit)
    return list((await session.scalars(query)).all())


async def sipp_upgrade(
    session: AsyncSession, satker_id: str, version: str
) -> SippUpgradeRecord | None:
    return await session.get(SippUpgradeRecord, (satker_id, version))
