"""Changes to a person that reach their sign-ins: deactivating them, or a new password,
revokes their refresh tokens, so their access ends when the access token they hold
expires (minutes). People know nothing of tokens; sign-in builds on people."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.core.auth import refresh
from services.core.people import service as people
from services.core.people.models import PersonRecord


async def update_person(
    session: AsyncSession,
    person: PersonRecord,
    changes: Mapping[str, Any],
    *,
    known_roles: Mapping[str, object],
    now: datetime,
) -> PersonRecord:
    """Apply `changes` (already checked for who may make them); a deactivated person's
    refresh tokens are revoked."""
    await people.apply_changes(session, person, changes, known_roles=known_roles, now=now)
    if changes.get("active") is False:
        await refresh.revoke_person(session, person.username, now)
    return person


async def set_password(
    session: AsyncSession, person: PersonRecord, password_hash: str, *, now: datetime
) -> None:
    """A new password signs every session of the old one out (its refresh tokens)."""
    await people.store_password_hash(session, person, password_hash, now=now)
    await refresh.revoke_person(session, person.username, now)
