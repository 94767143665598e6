"""Gauges read from the database at scrape time.

Each query is one GROUP BY over an indexed or small table (open tasks, unpublished
outbox rows, monitors, one backup check per satker and day), so a scrape costs a few
milliseconds. Two counts grow with history: instances (`ix_instance_sop_status` covers
them) and webhook deliveries (one row per event and subscription); at a court's volume
that stays in the milliseconds for years, and the delivery log is the place to prune.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.core.audit.models import FindingRecord, OutboxRecord
from services.core.engine.state import TaskStatus
from services.core.instances.models import InstanceRecord, TaskRecord, past_due
from services.core.monitors.models import MonitorCheckRecord, MonitorRecord
from services.core.notifications import service as notifications
from services.core.people.acting import UNSTAFFED
from services.core.sipp.models import BackupCheckRecord
from services.core.webhooks_out.models import WebhookDeliveryRecord

# Every status a delivery can have (see WebhookDeliveryRecord.status). Each is reported,
# at 0 too: an alert on the change of `dead` needs the series before the first one dies.
DELIVERY_STATUSES = ("pending", "succeeded", "failed", "dead")


@dataclass(frozen=True)
class TaskLoad:
    sop: str
    lane: str
    open: int
    overdue: int


@dataclass(frozen=True)
class Certificate:
    monitor_id: str
    name: str
    satker: str
    days_left: float


@dataclass(frozen=True)
class BackupChecks:
    satker: str
    last_checked_at: datetime
    last_success_at: datetime | None


@dataclass(frozen=True)
class Snapshot:
    instances: list[tuple[str, str, int]]  # (sop, state, count)
    tasks: list[TaskLoad]
    escalations: list[tuple[int, int]]  # (level, open tasks at that level)
    outbox_unpublished: int
    outbox_lag_seconds: float
    monitors: list[tuple[str, str, int]]  # (satker, status, count)
    certificates: list[Certificate]
    latencies: list[tuple[str, str, str, float]]  # (monitor, name, satker, seconds)
    backups: list[BackupChecks]
    webhook_deliveries: dict[str, int]  # status -> count
    # (satker, role, count) of the `role.unstaffed` findings: escalations that reached nobody.
    unstaffed: list[tuple[str, str, int]] = field(default_factory=list)
    # (channel, status) -> messages to people (every pair, zeros included).
    notifications: dict[tuple[str, str], int] = field(default_factory=dict)


async def snapshot(session: AsyncSession, now: datetime) -> Snapshot:
    instances = await session.execute(
        sa.select(col(InstanceRecord.sop_code), col(InstanceRecord.status), sa.func.count())
        .group_by(col(InstanceRecord.sop_code), col(InstanceRecord.status))
        .order_by(col(InstanceRecord.sop_code), col(InstanceRecord.status))
    )
    is_open = col(TaskRecord.status) == TaskStatus.OPEN.value
    overdue = sa.func.sum(sa.case((past_due(col(TaskRecord.due_at), now), 1), else_=0))
    tasks = await session.execute(
        sa.select(col(TaskRecord.sop_code), col(TaskRecord.lane), sa.func.count(), overdue)
        .where(is_open)
        .group_by(col(TaskRecord.sop_code), col(TaskRecord.lane))
        .order_by(col(TaskRecord.sop_code), col(TaskRecord.lane))
    )
    escalations = await session.execute(
        sa.select(col(TaskRecord.escalation_level), sa.func.count())
        .where(is_open, col(TaskRecord.escalation_level) > 0)
        .group_by(col(TaskRecord.escalation_level))
        .order_by(col(TaskRecord.escalation_level))
    )
    unpublished, oldest = (
        await session.execute(
            sa.select(sa.func.count(), sa.func.min(col(OutboxRecord.created_at))).where(
                col(OutboxRecord.published_at).is_(None)
            )
        )
    ).one()
    monitors = await session.execute(
        sa.select(col(MonitorRecord.satker_id), col(MonitorRecord.status), sa.func.count())
        .where(col(MonitorRecord.active))
        .group_by(col(MonitorRecord.satker_id), col(MonitorRecord.status))
        .order_by(col(MonitorRecord.satker_id), col(MonitorRecord.status))
    )
    certificates = await session.execute(
        sa.select(
            col(MonitorRecord.id),
            col(MonitorRecord.name),
            col(MonitorRecord.satker_id),
            col(MonitorRecord.certificate_expires_at),
        )
        .where(col(MonitorRecord.active), col(MonitorRecord.certificate_expires_at).is_not(None))
        .order_by(col(MonitorRecord.id))
    )
    newest = (
        sa.select(
            col(MonitorCheckRecord.monitor_id).label("monitor_id"),
            sa.func.max(col(MonitorCheckRecord.checked_at)).label("checked_at"),
        )
        .group_by(col(MonitorCheckRecord.monitor_id))
        .subquery()
    )
    latencies = await session.execute(
        sa.select(
            col(MonitorRecord.id),
            col(MonitorRecord.name),
            col(MonitorRecord.satker_id),
            col(MonitorCheckRecord.latency_ms),
        )
        .join(newest, newest.c.monitor_id == col(MonitorRecord.id))
        .join(
            MonitorCheckRecord,
            sa.and_(
                col(MonitorCheckRecord.monitor_id) == newest.c.monitor_id,
                col(MonitorCheckRecord.checked_at) == newest.c.checked_at,
            ),
        )
        .where(col(MonitorRecord.active), col(MonitorCheckRecord.latency_ms).is_not(None))
        .order_by(col(MonitorRecord.id))
    )
    succeeded = sa.case((col(BackupCheckRecord.ok), col(BackupCheckRecord.checked_at)))
    backups = await session.execute(
        sa.select(
            col(BackupCheckRecord.satker_id),
            sa.func.max(col(BackupCheckRecord.checked_at)),
            sa.func.max(succeeded),
        )
        .group_by(col(BackupCheckRecord.satker_id))
        .order_by(col(BackupCheckRecord.satker_id))
    )
    deliveries = await session.execute(
        sa.select(col(WebhookDeliveryRecord.status), sa.func.count()).group_by(
            col(WebhookDeliveryRecord.status)
        )
    )
    unstaffed = await session.execute(
        sa.select(col(FindingRecord.satker_id), col(FindingRecord.subject), sa.func.count())
        .where(col(FindingRecord.type) == UNSTAFFED)
        .group_by(col(FindingRecord.satker_id), col(FindingRecord.subject))
        .order_by(col(FindingRecord.satker_id), col(FindingRecord.subject))
    )
    told = await notifications.counts(session)
    return Snapshot(
        instances=[(sop, state, count) for sop, state, count in instances],
        tasks=[TaskLoad(sop, lane, count, int(late or 0)) for sop, lane, count, late in tasks],
        escalations=[(level, count) for level, count in escalations],
        outbox_unpublished=unpublished,
        outbox_lag_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        monitors=[(satker, status, count) for satker, status, count in monitors],
        certificates=[
            Certificate(monitor_id, name, satker, (expires - now).total_seconds() / 86400)
            for monitor_id, name, satker, expires in certificates
            if expires is not None
        ],
        latencies=[
            (monitor_id, name, satker, latency / 1000)
            for monitor_id, name, satker, latency in latencies
            if latency is not None
        ],
        backups=[BackupChecks(satker, last, success) for satker, last, success in backups],
        webhook_deliveries={
            **dict.fromkeys(DELIVERY_STATUSES, 0),
            **dict(deliveries.all()),
        },
        unstaffed=[
            (satker, subject.removeprefix("role:"), count) for satker, subject, count in unstaffed
        ],
        notifications={
            (channel, status): told.get((channel, status), 0)
            for channel in notifications.CHANNELS
            for status in notifications.STATUSES
        },
    )
