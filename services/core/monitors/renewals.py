"""Service renewals (hosting, domain, connection): remind ahead through SOP 05 step 4."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.audit.findings import record_finding
from services.core.engine.state import Actor
from services.core.errors import NotFound
from services.core.instances import service as instances
from services.core.instances.service import Applied
from services.core.monitors.models import RenewalRecord
from services.core.shared import Services

RENEWAL_STEP = "perbarui_layanan_hosting"
SERVICES = ("hosting", "domain", "connection")


async def create_renewal(
    session: AsyncSession, *, satker_id: str, fields: dict[str, Any], now: datetime
) -> RenewalRecord:
    renewal = RenewalRecord(id=str(uuid.uuid4()), satker_id=satker_id, created_at=now, **fields)
    session.add(renewal)
    await session.flush()
    return renewal


class RenewalNotFound(NotFound):
    code = "renewal_not_found"
    title = "No such renewal"


async def list_renewals(session: AsyncSession, satkers: set[str]) -> Sequence[RenewalRecord]:
    """Soonest due first."""
    return (
        await session.scalars(
            select(RenewalRecord)
            .where(col(RenewalRecord.satker_id).in_(sorted(satkers)))
            .order_by(col(RenewalRecord.due_date))
        )
    ).all()


async def delete_renewal(session: AsyncSession, satkers: set[str], renewal_id: str) -> None:
    renewal = await session.get(RenewalRecord, renewal_id)
    if renewal is None or renewal.satker_id not in satkers:
        raise RenewalNotFound(f"No renewal {renewal_id!r}")
    await session.delete(renewal)


async def remind_due(session: AsyncSession, services: Services, now: datetime) -> list[Applied]:
    """For every renewal entering its reminder period, once per due date: a `renewal.due`
    finding and a SOP 05 instance at step 4 (update the service at the provider)."""
    today = now.date()
    candidates = (
        await session.scalars(
            select(RenewalRecord).where(col(RenewalRecord.due_date) >= today - timedelta(days=30))
        )
    ).all()
    started = []
    for renewal in candidates:
        if renewal.reminded_for == renewal.due_date:
            continue
        if today < renewal.due_date - timedelta(days=renewal.remind_days_before):
            continue
        applied = await instances.start_instance(
            session,
            services,
            Actor.worker(renewal.satker_id),
            sop="pemeliharaan-website",
            title=f"Perpanjangan {renewal.service}: {renewal.name} "
            f"(jatuh tempo {renewal.due_date})",
            entry_point=RENEWAL_STEP,
            context={"renewal_id": renewal.id, "due_date": renewal.due_date.isoformat()},
            satker=renewal.satker_id,
            started_at=None,
            now=now,
        )
        renewal.reminded_for = renewal.due_date
        renewal.reminder_instance_id = applied.view.record.id
        await record_finding(
            session,
            satker_id=renewal.satker_id,
            type="renewal.due",
            subject=f"renewal:{renewal.id}",
            data={
                "service": renewal.service,
                "name": renewal.name,
                "provider": renewal.provider,
                "due_date": renewal.due_date.isoformat(),
                "days_left": (renewal.due_date - today).days,
                "instance_id": applied.view.record.id,
            },
            now=now,
        )
        started.append(applied)
    await session.flush()
    return started
