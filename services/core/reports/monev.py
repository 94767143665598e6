"""The Monev SOP form: per SOP, how it was applied in the period, its on-time figures,
the notable deviations (the latest late tasks, with their reasons) and the corrective
actions recorded (comments of kind `tindak_lanjut` on its instances, and those recorded
on the SOP for the period), signed by the Kasubbag and the Sekretaris."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.audit.models import AuditEventRecord
from services.core.dates import long_date
from services.core.engine.definition import Catalog
from services.core.engine.state import Actor
from services.core.instances.models import InstanceRecord
from services.core.people.acting import role_holders
from services.core.reports import performance
from services.core.reports.models import SopFollowUpRecord
from services.core.reports.pdf import MonevForm, MonevSection, Signatory
from services.core.reports.periods import (
    Period,
    local_stamp,
    percent_id,
    today,
    working_span_id,
)
from services.core.satkers.service import Satker
from services.core.shared import Services

SIGNING_ROLES = ("kasubbag_ptip", "sekretaris")
DEVIATIONS_SHOWN = 3
_QUARTERS = {"Q1": "Triwulan I", "Q2": "Triwulan II", "Q3": "Triwulan III", "Q4": "Triwulan IV"}


def period_name(period: Period) -> str:
    """`Triwulan IV 2026`, `November 2026`, `Tahun 2026`."""
    year, _, part = period.label.partition("-")
    if part in _QUARTERS:
        return f"{_QUARTERS[part]} {year}"
    if part:
        return long_date(period.first).split(" ", 1)[1]
    return f"Tahun {year}"


async def follow_ups_in(
    session: AsyncSession, satker_id: str, period: Period, start: datetime, end: datetime
) -> dict[str, list[str]]:
    """Corrective actions per SOP: on its instances in [start, end), then on the SOP."""
    found: dict[str, list[str]] = defaultdict(list)
    rows = await session.execute(
        select(col(InstanceRecord.sop_code), col(AuditEventRecord.data))
        .join(InstanceRecord, col(InstanceRecord.id) == col(AuditEventRecord.instance_id))
        .where(
            col(InstanceRecord.satker_id) == satker_id,
            col(AuditEventRecord.type) == "comment.added",
            col(AuditEventRecord.occurred_at) >= start,
            col(AuditEventRecord.occurred_at) < end,
        )
        .order_by(col(AuditEventRecord.occurred_at), col(AuditEventRecord.id))
    )
    for code, data in rows.all():
        if isinstance(data, dict) and data.get("kind") == "tindak_lanjut":
            found[code].append(str(data.get("text", "")))
    recorded = await session.scalars(
        select(SopFollowUpRecord)
        .where(
            col(SopFollowUpRecord.satker_id) == satker_id,
            col(SopFollowUpRecord.period) == period.label,
        )
        .order_by(col(SopFollowUpRecord.created_at))
    )
    for record in recorded.all():
        found[record.sop_code].append(record.text)
    return found


async def monev_form(
    session: AsyncSession,
    services: Services,
    catalog: Catalog,
    satker: Satker,
    period: Period,
    now: datetime,
) -> MonevForm:
    start, end = period.bounds(satker.timezone)
    rows = await performance.task_rows(session, satker.id, start, end)
    calendar = await services.calendars.get(session, satker)
    report = performance.compute(rows, catalog, calendar, satker=satker.id, period=period, now=now)
    await performance.add_reasons(session, report.late_tasks)
    follow_ups = await follow_ups_in(session, satker.id, period, start, end)
    applied = {sop.code: sop for sop in report.sops}
    steps = {(sop.code, step.id): step for sop in catalog.sops for step in sop.steps}
    sections = []
    for definition in sorted(catalog.sops, key=lambda sop: sop.number):
        figures = applied.get(definition.code)
        late = [task for task in report.late_tasks if task.sop == definition.code]
        deviations = []
        for task in late[:DEVIATIONS_SHOWN]:
            step = steps.get((definition.code, task.step_id))
            label = f"Langkah {step.number} ({step.activity})" if step else task.step_id
            reasons = "; ".join(task.reasons) or "tanpa keterangan"
            deviations.append(
                f"{task.title}: {label} terlambat {working_span_id(task.late_seconds)} "
                f"dari batas {local_stamp(task.due_at, satker.timezone)}. Alasan: {reasons}."
            )
        total = figures.figures if figures else performance.Figures()
        sections.append(
            MonevSection(
                number=definition.number,
                code=definition.code,
                title=definition.title,
                instances=figures.instances if figures else 0,
                tasks=total.tasks,
                on_time=total.on_time,
                late=total.late,
                open=total.open,
                on_time_percent=percent_id(total.on_time_percent),
                deviations=deviations,
                follow_ups=follow_ups.get(definition.code, []),
            )
        )
    directory = await services.directory(session, satker.id)
    holders = await role_holders(
        session, directory, [(satker.id, role) for role in SIGNING_ROLES], now
    )
    signatories = []
    for role in SIGNING_ROLES:
        office = services.roles[role].name if role in services.roles else role
        people = holders.get((satker.id, role), [])
        own = [holder for holder in people if holder.acting is None]
        chosen = next(iter(own or people), None)
        if chosen is not None and chosen.acting is not None:
            office = f"{chosen.acting.kind.capitalize()}. {office}"
        signatories.append(Signatory(office, chosen.name if chosen else None))
    signed_on = min(period.last, today(satker.timezone, now))
    return MonevForm(
        satker_name=satker.name,
        period_label=period_name(period),
        period_range=period.label_id,
        place_date=f"{satker.name}, {long_date(signed_on)}",
        generated=local_stamp(now, satker.timezone),
        sections=sections,
        signatories=(signatories[0], signatories[1]),
    )


async def add_follow_up(
    session: AsyncSession,
    services: Services,
    actor: Actor,
    *,
    satker_id: str,
    sop_code: str,
    period: Period,
    text: str,
    now: datetime,
) -> SopFollowUpRecord:
    record = SopFollowUpRecord(
        id=services.new_id(),
        satker_id=satker_id,
        sop_code=sop_code,
        period=period.label,
        text=text,
        author=actor.sub,
        author_name=actor.name,
        created_at=now,
    )
    session.add(record)
    await session.flush()
    return record


async def follow_ups_of(
    session: AsyncSession, satker_id: str, period: str | None, sop: str | None
) -> list[SopFollowUpRecord]:
    query = select(SopFollowUpRecord).where(col(SopFollowUpRecord.satker_id) == satker_id)
    if period is not None:
        query = query.where(col(SopFollowUpRecord.period) == period)
    if sop is not None:
        query = query.where(col(SopFollowUpRecord.sop_code) == sop)
    rows = await session.scalars(
        query.order_by(col(SopFollowUpRecord.created_at), col(SopFollowUpRecord.id)).limit(500)
    )
    return list(rows.all())
