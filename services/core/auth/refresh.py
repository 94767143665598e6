"""Refresh tokens: opaque random strings, stored as their SHA-256, rotated on each use.

A token used a second time was copied: whoever presents it, the whole family (every
token descended from the same sign-in) is revoked, so the thief and the owner are both
signed out and the owner signs in again. Logging out, a new password and deactivating
the person revoke too.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.auth.models import RefreshTokenRecord

log = structlog.get_logger(__name__)

_TABLE: sa.Table = RefreshTokenRecord.__table__  # type: ignore[attr-defined]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Refused:
    """Why a refresh token was not accepted: unknown, expired, revoked, reused."""

    reason: str


async def issue(
    session: AsyncSession,
    username: str,
    *,
    lifetime: timedelta,
    now: datetime,
    family_id: str | None = None,
) -> str:
    """A new refresh token (shown to the client once; only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    session.add(
        RefreshTokenRecord(
            id=str(uuid.uuid4()),
            token_hash=_digest(token),
            family_id=family_id or str(uuid.uuid4()),
            username=username,
            issued_at=now,
            expires_at=now + lifetime,
        )
    )
    await session.flush()
    return token


async def use(session: AsyncSession, token: str, now: datetime) -> RefreshTokenRecord | Refused:
    """Spend `token`: its record, marked used, if it was good; otherwise why not. A
    token used before revokes its family (the caller commits that before answering)."""
    record = (
        await session.scalars(
            select(RefreshTokenRecord).where(col(RefreshTokenRecord.token_hash) == _digest(token))
        )
    ).first()
    if record is None:
        return Refused("unknown")
    if record.revoked_at is not None:
        return Refused("revoked")
    if record.expires_at <= now:
        return Refused("expired")
    # Spent atomically: of two requests racing with one token, one wins, the other is
    # a reuse.
    spent = await session.execute(
        sa.update(_TABLE)
        .where(_TABLE.c.id == record.id, _TABLE.c.used_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        revoked = await revoke_family(session, record.family_id, now)
        log.warning(
            "refresh token reused: its family is revoked",
            username=record.username,
            family=record.family_id,
            revoked=revoked,
        )
        return Refused("reused")
    return record


async def revoke_family(session: AsyncSession, family_id: str, now: datetime) -> int:
    result = await session.execute(
        sa.update(_TABLE)
        .where(_TABLE.c.family_id == family_id, _TABLE.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def revoke_token(session: AsyncSession, token: str, now: datetime) -> bool:
    """Log out: the token's family is revoked. False for a token nobody issued."""
    record = (
        await session.scalars(
            select(RefreshTokenRecord).where(col(RefreshTokenRecord.token_hash) == _digest(token))
        )
    ).first()
    if record is None:
        return False
    await revoke_family(session, record.family_id, now)
    return True


async def revoke_person(session: AsyncSession, username: str, now: datetime) -> int:
    """Every refresh token of the person: they keep access until their access token
    expires, no longer."""
    result = await session.execute(
        sa.update(_TABLE)
        .where(_TABLE.c.username == username, _TABLE.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
