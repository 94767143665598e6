"""SOP 10 in service: stored configuration, the daily instance, its automated steps.

Every working day the worker opens the day's SOP 10 instance for each configured
satker. Its step 1 (the scheduled sync and backup) is recorded by running the
verification; step 2 takes `berhasil` or `tidak_berhasil` from the result, so a failure
becomes a task for staf TI (manual sync and backup) with the reasons to act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.audit.findings import record_finding
from services.core.automation.service import StepCannotRun, StepResult
from services.core.engine.calendar import WorkingCalendar
from services.core.engine.state import Actor
from services.core.instances.models import InstanceRecord
from services.core.instances.service import Applied, InstanceView, start_instance
from services.core.shared import Services
from services.core.sipp.config import SippCheckConfig
from services.core.sipp.models import BackupCheckRecord, SippConfigRecord
from services.core.sipp.verify import BackupVerdict, verify_backup

SOP_CODE = "monitoring-sinkronisasi-backup-sipp"


def daily_title(day: date) -> str:
    return f"Monitoring sinkronisasi dan back up SIPP {day.isoformat()}"


async def get_config(session: AsyncSession, satker_id: str) -> SippCheckConfig | None:
    record = await session.get(SippConfigRecord, satker_id)
    return None if record is None else SippCheckConfig.model_validate(record.config)


async def put_config(
    session: AsyncSession, satker_id: str, config: SippCheckConfig, now: datetime
) -> None:
    record = await session.get(SippConfigRecord, satker_id)
    data = config.model_dump(mode="json")
    if record is None:
        session.add(SippConfigRecord(satker_id=satker_id, config=data, updated_at=now))
    else:
        record.config = data
        record.updated_at = now
    await session.flush()


async def configured_satkers(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(col(SippConfigRecord.satker_id)))).all())


# A working day's check counts as missed when none succeeded this long after the satker
# opened: the daily job starts it within ten minutes, and a check takes minutes.
CHECK_GRACE = timedelta(hours=2)
# Missed days are counted this far back at most.
MISSED_LOOKBACK_DAYS = 31


def working_days_missed(
    calendar: WorkingCalendar,
    *,
    last_success: datetime | None,
    configured_at: datetime,
    now: datetime,
) -> int:
    """The satker's working days (its own calendar: weekends, national holidays, cuti
    bersama, local days off) that opened at least `CHECK_GRACE` before `now` with no
    successful SIPP check since: those after the day of the last success, or, never
    successful, those that opened after the check was configured."""
    zone = ZoneInfo(calendar.timezone)
    today = now.astimezone(zone).date()
    if last_success is not None:
        first, not_before = last_success.astimezone(zone).date() + timedelta(days=1), None
    else:
        first, not_before = configured_at.astimezone(zone).date(), configured_at
    day = max(first, today - timedelta(days=MISSED_LOOKBACK_DAYS))
    missed = 0
    while day <= today:
        if calendar.is_working_day(day):
            opening = calendar.next_working_instant(datetime.combine(day, time(), zone))
            if (not_before is None or opening >= not_before) and opening + CHECK_GRACE <= now:
                missed += 1
        day += timedelta(days=1)
    return missed


async def missed_checks(session: AsyncSession, services: Services, now: datetime) -> dict[str, int]:
    """`working_days_missed` of every satker with a SIPP check configuration."""
    configs = (
        await session.execute(
            select(col(SippConfigRecord.satker_id), col(SippConfigRecord.updated_at))
        )
    ).all()
    if not configs:
        return {}
    successes = dict(
        (
            await session.execute(
                sa.select(
                    col(BackupCheckRecord.satker_id), sa.func.max(BackupCheckRecord.checked_at)
                )
                .where(col(BackupCheckRecord.ok))
                .group_by(col(BackupCheckRecord.satker_id))
            )
        ).all()
    )
    directory = await services.directory(session, *(satker for satker, _ in configs))
    missed = {}
    for satker, configured_at in configs:
        calendar = await services.calendars.get(session, directory.get(satker))
        missed[satker] = working_days_missed(
            calendar, last_success=successes.get(satker), configured_at=configured_at, now=now
        )
    return missed


async def record_check(
    session: AsyncSession,
    *,
    satker_id: str,
    day: date,
    verdict: BackupVerdict,
    now: datetime,
    instance_id: str | None,
) -> BackupCheckRecord:
    """Store the result and publish `backup.verified` or `backup.failed`."""
    reasons = [{"code": r.code, "message": r.message} for r in verdict.reasons]
    record = BackupCheckRecord(
        satker_id=satker_id,
        day=day,
        checked_at=now,
        ok=verdict.ok,
        reasons=reasons,
        evidence=verdict.evidence,
        instance_id=instance_id,
    )
    session.add(record)
    await session.flush()
    await record_finding(
        session,
        satker_id=satker_id,
        type="backup.verified" if verdict.ok else "backup.failed",
        subject=f"backup-check:{record.id}",
        data={"day": day.isoformat(), "reasons": reasons, "instance_id": instance_id},
        now=now,
    )
    return record


async def list_checks(
    session: AsyncSession, satkers: Sequence[str], *, limit: int
) -> Sequence[BackupCheckRecord]:
    query = (
        select(BackupCheckRecord)
        .where(col(BackupCheckRecord.satker_id).in_(sorted(satkers)))
        .order_by(col(BackupCheckRecord.checked_at).desc(), col(BackupCheckRecord.id).desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def open_daily_instance(
    session: AsyncSession, services: Services, *, satker_id: str, day: date, now: datetime
) -> Applied | None:
    """Start the day's SOP 10 instance unless it exists (one per satker and day)."""
    exists = await session.scalar(
        select(col(InstanceRecord.id)).where(
            col(InstanceRecord.satker_id) == satker_id,
            col(InstanceRecord.sop_code) == SOP_CODE,
            col(InstanceRecord.title) == daily_title(day),
        )
    )
    if exists is not None:
        return None
    return await start_instance(
        session,
        services,
        Actor.worker(satker_id),
        sop=SOP_CODE,
        title=daily_title(day),
        entry_point=None,
        context={"day": day.isoformat()},
        satker=satker_id,
        started_at=None,
        now=now,
    )


async def open_daily_instances(
    session: AsyncSession, services: Services, now: datetime
) -> list[Applied]:
    """Every configured satker's SOP 10 instance for its current day, if `now` is within
    its working hours and the instance is not open yet."""
    configured = await configured_satkers(session)
    directory = await services.directory(session, *configured)
    opened = []
    for satker_id in configured:
        calendar = await services.calendars.get(session, directory.get(satker_id))
        if not calendar.is_working_time(now):
            continue
        local_day = now.astimezone(ZoneInfo(calendar.timezone)).date()
        applied = await open_daily_instance(
            session, services, satker_id=satker_id, day=local_day, now=now
        )
        if applied is not None:
            opened.append(applied)
    return opened


def _day_of(view: InstanceView, now: datetime) -> date:
    day = view.record.context.get("day")
    return date.fromisoformat(day) if isinstance(day, str) else now.date()


async def run_scheduled_step(
    session: AsyncSession, view: InstanceView, task_id: str, now: datetime
) -> StepResult:
    """Step 1: what the task scheduler did last night, read from its files and data."""
    config = await get_config(session, view.record.satker_id)
    if config is None:
        raise StepCannotRun(
            f"satker {view.record.satker_id} has no SIPP check configuration "
            f"(PUT /v1/satkers/{view.record.satker_id}/sipp-config)"
        )
    day = _day_of(view, now)
    verdict = await verify_backup(config, satker=view.record.satker_id, day=day, now=now)
    record = await record_check(
        session,
        satker_id=view.record.satker_id,
        day=day,
        verdict=verdict,
        now=now,
        instance_id=view.record.id,
    )
    summary = "backup and sync found" if verdict.ok else "problems found"
    return StepResult(note=f"Checked {day}: {summary}", evidence=(f"backup-check:{record.id}",))


async def run_check_step(
    session: AsyncSession, view: InstanceView, task_id: str, now: datetime
) -> StepResult:
    """Step 2: decide `berhasil` / `tidak_berhasil` from the check step 1 stored."""
    record = await session.scalar(
        select(BackupCheckRecord)
        .where(col(BackupCheckRecord.instance_id) == view.record.id)
        .order_by(col(BackupCheckRecord.id).desc())
    )
    if record is None:
        raise StepCannotRun("step 1 stored no backup check for this instance")
    if record.ok:
        return StepResult(
            outcome="berhasil",
            note="Sinkronisasi dan back up berhasil.",
            evidence=(f"backup-check:{record.id}",),
        )
    reasons = "; ".join(f"[{r['code']}] {r['message']}" for r in record.reasons)
    return StepResult(
        outcome="tidak_berhasil",
        note=f"Perlu sinkron dan back up manual: {reasons}",
        evidence=(f"backup-check:{record.id}",),
    )
