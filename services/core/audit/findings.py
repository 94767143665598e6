"""Findings: what Alur noticed outside any instance (a backup check failed, a website
down, a role with nobody in it), kept and published through the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.core.audit.models import FindingRecord, OutboxRecord


async def record_finding(
    session: AsyncSession,
    *,
    satker_id: str,
    type: str,
    subject: str,
    data: dict[str, Any],
    now: datetime,
) -> FindingRecord:
    """Keep a finding and write its outbox row, in the caller's transaction."""
    finding = FindingRecord(
        satker_id=satker_id, type=type, subject=subject, occurred_at=now, data=data
    )
    session.add(finding)
    await session.flush()
    session.add(
        OutboxRecord(
            event_id=None,
            satker_id=satker_id,
            type=type,
            payload={
                "id": f"fnd_{finding.id}",
                "type": type,
                "occurred_at": now.isoformat(),
                "satker": satker_id,
                "subject": subject,
                "data": data,
            },
            created_at=now,
        )
    )
    await session.flush()
    return finding
