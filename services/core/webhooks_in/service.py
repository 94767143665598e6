"""Use cases of inbound webhooks: manage hook sources, receive (verify, dedupe, store)
messages, and read the message log. Processing a stored message is `processing.py`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.errors import AlurError, Conflict, NotFound
from services.core.satkers.service import SatkerNotFound
from services.core.validation import check_json
from services.core.webhooks_in import repository, signature
from services.core.webhooks_in.models import HookSourceRecord, InboundMessageRecord

# A notice is a few fields; anything near this size is not one of ours.
MAX_BODY_BYTES = 256 * 1024
# The `{source}` of the hook URL.
SOURCE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


class HookKind(StrEnum):
    SIPP_UPGRADE = "sipp-upgrade"
    CORRELATION = "correlation"


class MessageStatus(StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"
    IGNORED = "ignored"


class HookSourceNotFound(NotFound):
    code = "hook_source_not_found"
    title = "No such hook source"


class HookSourceExists(Conflict):
    code = "hook_source_exists"
    title = "The hook source name is taken"


class InvalidHookSource(AlurError):
    code = "invalid_hook_source"
    status = 422
    title = "The hook source is not valid"


class WebhookBodyInvalid(AlurError):
    code = "webhook_body_invalid"
    status = 400
    title = "The webhook body is not a JSON object"


class WebhookBodyTooLarge(AlurError):
    code = "webhook_body_too_large"
    status = 413
    title = "The webhook body is too large"


@dataclass(frozen=True)
class Receipt:
    message_id: str
    status: str
    duplicate: bool


# --- sources ----------------------------------------------------------------------------


def _visible(source: HookSourceRecord, visible: Collection[str]) -> bool:
    # Whoever can see every target satker could have created the source.
    return source.deleted_at is None and set(source.satkers) <= set(visible)


async def create_source(
    session: AsyncSession,
    *,
    name: str,
    kind: HookKind,
    satkers: list[str],
    description: str,
    allowed: Collection[str],
    created_by: str,
    now: datetime,
) -> tuple[HookSourceRecord, str]:
    """Register a sender; return it with its secret (which is never shown again)."""
    if not re.fullmatch(SOURCE_NAME_PATTERN, name):
        raise InvalidHookSource(f"name {name!r} must match {SOURCE_NAME_PATTERN}")
    if not satkers:
        raise InvalidHookSource("a hook source needs at least one target satker")
    outside = sorted(set(satkers) - set(allowed))
    if outside:
        raise SatkerNotFound(f"No satker {', '.join(map(repr, outside))} among yours")
    existing = await repository.get_source(session, name)
    if existing is not None:
        detail = f"Hook source {name!r} already exists"
        if existing.deleted_at is not None:
            # Its messages keep the name; a new sender under it would share their dedupe.
            detail = f"Hook source name {name!r} belonged to a deleted source; choose another"
        raise HookSourceExists(detail)
    secret = signature.new_secret()
    record = HookSourceRecord(
        name=name,
        kind=kind.value,
        satkers=list(dict.fromkeys(satkers)),
        description=description,
        secret=secret,
        created_by=created_by,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(record)
            await session.flush()
    except IntegrityError:
        raise HookSourceExists(f"Hook source {name!r} already exists") from None
    return record, secret


async def list_sources(session: AsyncSession, visible: Collection[str]) -> list[HookSourceRecord]:
    return [s for s in await repository.all_sources(session) if _visible(s, visible)]


async def get_source(
    session: AsyncSession, name: str, visible: Collection[str]
) -> HookSourceRecord:
    source = await repository.get_source(session, name)
    if source is None or not _visible(source, visible):
        raise HookSourceNotFound(f"No hook source {name!r}")
    return source


async def delete_source(
    session: AsyncSession, name: str, visible: Collection[str], now: datetime
) -> None:
    source = await get_source(session, name, visible)
    source.deleted_at = now
    source.secret = ""
    await session.flush()


# --- receiving --------------------------------------------------------------------------


async def receive(
    session: AsyncSession,
    source_name: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> Receipt:
    """Verify a posted message and store it once; nothing is stored unless it verifies."""
    # The source is looked up before the body is trusted for anything: its secret is
    # what the body is checked against.
    source = await repository.get_source(session, source_name)
    if source is None or source.deleted_at is not None:
        raise HookSourceNotFound(f"No hook source {source_name!r}")
    if len(body) > MAX_BODY_BYTES:
        raise WebhookBodyTooLarge(f"The body has {len(body)} bytes; at most {MAX_BODY_BYTES}")
    message_id = signature.verify(source.secret, headers, body, now)
    existing = await repository.message_by_sender_id(session, source.name, message_id)
    if existing is not None:
        return Receipt(existing.id, existing.status, duplicate=True)
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WebhookBodyInvalid(f"The body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise WebhookBodyInvalid("The body must be a JSON object")
    try:
        check_json(payload)
    except ValueError as exc:
        raise WebhookBodyInvalid(f"The body cannot be stored: {exc}") from None
    record = InboundMessageRecord(
        id=str(uuid.uuid4()),
        source=source.name,
        message_id=message_id,
        received_at=now,
        body=payload,
        status=MessageStatus.RECEIVED.value,
    )
    try:
        async with session.begin_nested():
            session.add(record)
            await session.flush()
    except IntegrityError:
        # The same webhook-id arrived concurrently and was stored first.
        first = await repository.message_by_sender_id(session, source.name, message_id)
        if first is None:
            raise
        return Receipt(first.id, first.status, duplicate=True)
    return Receipt(record.id, record.status, duplicate=False)


# --- the message log --------------------------------------------------------------------


async def list_messages(
    session: AsyncSession,
    visible: Collection[str],
    *,
    source: str | None,
    status: MessageStatus | None,
    limit: int,
) -> list[InboundMessageRecord]:
    # Messages of deleted sources stay readable by those who could see the source.
    names = [
        s.name
        for s in await repository.all_sources(session)
        if set(s.satkers) <= set(visible) and (source is None or s.name == source)
    ]
    if not names:
        return []
    return await repository.messages(
        session, sources=names, status=status.value if status else None, limit=limit
    )


async def waiting_message_ids(
    session: AsyncSession, *, received_before: datetime, limit: int = 500
) -> list[str]:
    return await repository.waiting_message_ids(
        session, status=MessageStatus.RECEIVED.value, received_before=received_before, limit=limit
    )
