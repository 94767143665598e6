"""The published form of an instance's audit event: the body of its webhooks, composed by
the relay from the event row its outbox row refers to (rather than a second copy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.audit.models import AuditEventRecord
from services.core.instances.models import InstanceRecord

_EVENTS: sa.Table = AuditEventRecord.__table__  # type: ignore[attr-defined]
_BODY_COLUMNS = (
    "id",
    "instance_id",
    "type",
    "occurred_at",
    "task_id",
    "actor",
    "data",
    "acting_for",
)

_INSTANCES: sa.Table = InstanceRecord.__table__  # type: ignore[attr-defined]


def event_body(event: Mapping[Any, Any], satker: str, sop: str) -> dict[str, Any]:
    """The published form of an instance's audit event (webhook bodies; see
    `services.core.webhooks_out.event_types`). `event` holds the event's columns;
    `acting_for` is in the body only when it was set."""
    body = {
        "id": f"evt_{event['id']}",
        "type": event["type"],
        "occurred_at": event["occurred_at"].isoformat(),
        "satker": satker,
        "instance_id": event["instance_id"],
        "sop": sop,
        "task_id": event["task_id"],
        "actor": event["actor"],
        "data": event["data"],
    }
    if event.get("acting_for") is not None:
        body["acting_for"] = event["acting_for"]
    return body


async def event_bodies(
    session: AsyncSession, event_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """The published forms of the given events, by event id (for the outbox relay: an
    event's outbox row refers to it rather than holding a second copy of its data)."""
    if not event_ids:
        return {}
    found = (
        await session.execute(
            sa.select(
                *(_EVENTS.c[name] for name in _BODY_COLUMNS),
                _INSTANCES.c.satker_id,
                _INSTANCES.c.sop_code,
            )
            .join(_INSTANCES, _INSTANCES.c.id == _EVENTS.c.instance_id)
            .where(_EVENTS.c.id.in_(event_ids))
        )
    ).mappings()
    return {row["id"]: event_body(row, row["satker_id"], row["sop_code"]) for row in found}
