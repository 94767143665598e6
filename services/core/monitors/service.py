"""Website monitoring for SOP 05: schedule checks, judge them, open the right SOP.

A confirmed outage (after `retries` failed checks) opens a SOP 05 instance at its
incident entry point (step 5, reporting the problem) with the evidence; the recovery
(after `confirmations` good checks) is recorded on it. When every monitored site of the
satker and its reference target are down together, it is the court's own connection:
SOP 07 (network incident) is opened instead. Certificates and domains are checked less
often than the site, and their expiry is announced once per threshold.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.audit.findings import record_finding
from services.core.engine.errors import DomainError
from services.core.engine.state import Actor, Comment
from services.core.errors import NotFound
from services.core.instances import service as instances
from services.core.instances.models import InstanceRecord
from services.core.instances.service import Applied
from services.core.monitors.models import (
    MaintenanceWindowRecord,
    MonitorCheckRecord,
    MonitorRecord,
)
from services.core.monitors.probe import MonitorSpec, check_http, content_stale
from services.core.monitors.rdap import RdapBootstrap, RdapError, domain_expiry
from services.core.monitors.rules import (
    MaintenanceWindow,
    MonitorState,
    OneOffWindow,
    WeeklyWindow,
    in_maintenance,
    next_state,
)
from services.core.monitors.tls import CertificateCheckError, certificate_status, expiry_alerts
from services.core.shared import Services

log = structlog.get_logger(__name__)

WEBSITE_SOP, WEBSITE_INCIDENT_STEP = "pemeliharaan-website", "laporkan_ke_kasubbag"
NETWORK_SOP = "gangguan-jaringan"
WORKER = Actor.worker()
# Certificates and registrations change slowly: look at them a few times a day.
CERTIFICATE_EVERY = timedelta(hours=6)
DOMAIN_EVERY = timedelta(hours=24)


class MonitorNotFound(NotFound):
    code = "monitor_not_found"
    title = "No such monitor"


@dataclass(frozen=True)
class MonitorOptions:
    rdap: RdapBootstrap
    certificate_thresholds: tuple[int, ...] = (21, 14, 7)
    domain_thresholds: tuple[int, ...] = (30, 14, 7)
    ca_file: str | None = None


def windows_of(records: Sequence[MaintenanceWindowRecord]) -> list[MaintenanceWindow]:
    windows: list[MaintenanceWindow] = []
    for record in records:
        if record.kind == "one_off" and record.starts_at and record.ends_at:
            windows.append(OneOffWindow(starts_at=record.starts_at, ends_at=record.ends_at))
        elif record.kind == "weekly" and record.start_time and record.end_time:
            windows.append(
                WeeklyWindow(
                    weekday=record.weekday or 0,
                    start=record.start_time,
                    end=record.end_time,
                    timezone=record.timezone,
                )
            )
    return windows


def spec_of(monitor: MonitorRecord) -> MonitorSpec:
    return MonitorSpec(
        url=monitor.url,
        timeout_seconds=monitor.timeout_seconds,
        expected_status=monitor.expected_status,
        keyword=monitor.keyword,
        keyword_mode="absent" if monitor.keyword_mode == "absent" else "present",
        freshness_days=monitor.freshness_days,
        feed_url=monitor.feed_url,
    )


async def get_monitor(session: AsyncSession, satkers: set[str], monitor_id: str) -> MonitorRecord:
    monitor = await session.get(MonitorRecord, monitor_id)
    if monitor is None or monitor.satker_id not in satkers:
        raise MonitorNotFound(f"No monitor {monitor_id!r}")
    return monitor


async def create_monitor(
    session: AsyncSession, *, satker_id: str, fields: dict[str, Any], now: datetime
) -> MonitorRecord:
    monitor = MonitorRecord(
        id=str(uuid.uuid4()), satker_id=satker_id, created_at=now, next_check_at=now, **fields
    )
    session.add(monitor)
    await session.flush()
    return monitor


async def list_monitors(session: AsyncSession, satkers: set[str]) -> Sequence[MonitorRecord]:
    return (
        await session.scalars(
            select(MonitorRecord)
            .where(col(MonitorRecord.satker_id).in_(sorted(satkers)))
            .order_by(col(MonitorRecord.satker_id), col(MonitorRecord.name))
        )
    ).all()


async def update_monitor(
    session: AsyncSession, monitor: MonitorRecord, fields: dict[str, Any]
) -> MonitorRecord:
    for name, value in fields.items():
        setattr(monitor, name, value)
    await session.flush()
    return monitor


async def delete_monitor(session: AsyncSession, satkers: set[str], monitor_id: str) -> None:
    """The monitor goes with its checks and maintenance windows; the incidents it opened
    (instances) and its findings stay."""
    monitor = await get_monitor(session, satkers, monitor_id)
    for model in (MonitorCheckRecord, MaintenanceWindowRecord):
        await session.execute(sa.delete(model).where(col(model.monitor_id) == monitor.id))
    await session.delete(monitor)


async def recent_checks(
    session: AsyncSession, monitor: MonitorRecord, limit: int
) -> Sequence[MonitorCheckRecord]:
    return (
        await session.scalars(
            select(MonitorCheckRecord)
            .where(col(MonitorCheckRecord.monitor_id) == monitor.id)
            .order_by(col(MonitorCheckRecord.checked_at).desc(), col(MonitorCheckRecord.id).desc())
            .limit(limit)
        )
    ).all()


async def add_window(
    session: AsyncSession, monitor: MonitorRecord, fields: dict[str, Any]
) -> MaintenanceWindowRecord:
    record = MaintenanceWindowRecord(monitor_id=monitor.id, **fields)
    windows_of([record])  # refuses an unknown timezone before it is stored
    session.add(record)
    await session.flush()
    return record


async def windows(
    session: AsyncSession, monitor: MonitorRecord
) -> Sequence[MaintenanceWindowRecord]:
    return (
        await session.scalars(
            select(MaintenanceWindowRecord).where(
                col(MaintenanceWindowRecord.monitor_id) == monitor.id
            )
        )
    ).all()


async def due_monitors(
    session: AsyncSession, now: datetime, *, limit: int = 2000
) -> list[tuple[str, datetime]]:
    """Claim the monitors whose check is due: (id, when it was due). Moving `next_check_at`
    on in the same transaction (rows locked, others skipped) means each slot runs once."""
    query = (
        select(MonitorRecord)
        .where(col(MonitorRecord.active), col(MonitorRecord.next_check_at) <= now)
        .order_by(col(MonitorRecord.next_check_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = []
    for monitor in (await session.scalars(query)).all():
        due = monitor.next_check_at or now
        claimed.append((monitor.id, due))
        # The next slot follows the schedule, not the moment this sweep ran, so lateness
        # does not accumulate; a monitor far behind skips to the next slot after now.
        step = timedelta(seconds=monitor.interval_seconds)
        slot = due + step
        if slot <= now:
            slot = now + step
        monitor.next_check_at = slot
    await session.flush()
    return claimed


async def run_check(
    session: AsyncSession,
    services: Services,
    http: httpx.AsyncClient,
    options: MonitorOptions,
    *,
    monitor_id: str,
    scheduled_at: datetime | None,
    now: datetime,
) -> MonitorCheckRecord | None:
    monitor = await session.get(MonitorRecord, monitor_id)
    if monitor is None or not monitor.active:
        return None
    windows = windows_of(
        (
            await session.scalars(
                select(MaintenanceWindowRecord).where(
                    col(MaintenanceWindowRecord.monitor_id) == monitor.id
                )
            )
        ).all()
    )
    maintenance = in_maintenance(windows, now)
    spec = spec_of(monitor)
    result = await check_http(http, spec, now)
    state, transition = next_state(
        MonitorState(
            status=monitor.status,  # type: ignore[arg-type]
            consecutive_failures=monitor.consecutive_failures,
            consecutive_successes=monitor.consecutive_successes,
        ),
        result.up,
        retries=monitor.retries,
        confirmations=monitor.confirmations,
        in_maintenance=maintenance,
    )
    monitor.status = state.status
    monitor.consecutive_failures = state.consecutive_failures
    monitor.consecutive_successes = state.consecutive_successes
    monitor.last_checked_at = now
    check = MonitorCheckRecord(
        monitor_id=monitor.id,
        scheduled_at=scheduled_at,
        checked_at=now,
        up=result.up,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        reason=result.reason.value if result.reason else None,
        error=result.error,
        in_maintenance=maintenance,
    )
    session.add(check)
    evidence = {
        "url": monitor.url,
        "status_code": result.status_code,
        "reason": check.reason,
        "error": result.error,
        "latency_ms": result.latency_ms,
        "checked_at": now.isoformat(),
    }
    if transition == "down":
        await _went_down(session, services, monitor, evidence, now)
    elif transition == "up" or (state.status == "up" and monitor.incident_instance_id):
        # Also when a site that went down comes back after a maintenance window.
        await _came_up(session, services, monitor, evidence, now)
    if result.up and not maintenance:
        await _content(session, monitor, spec, result, now)
    if not maintenance:
        # An expired certificate or domain is often why a site is down: check them anyway.
        await check_certificate(session, monitor, options, now)
        await check_domain(session, http, monitor, options, now)
    await session.flush()
    return check


async def _went_down(
    session: AsyncSession,
    services: Services,
    monitor: MonitorRecord,
    evidence: dict[str, Any],
    now: datetime,
) -> None:
    await record_finding(
        session, satker_id=monitor.satker_id, type="monitor.down",
        subject=f"monitor:{monitor.id}", data=evidence, now=now,
    )  # fmt: skip
    if await _connection_down(session, monitor.satker_id):
        sop, entry = NETWORK_SOP, None
        title = "Gangguan jaringan: semua situs dan target rujukan tidak dapat diakses"
    elif monitor.is_reference:
        return  # the outside reference alone tells nothing about the court's sites
    else:
        sop, entry = WEBSITE_SOP, WEBSITE_INCIDENT_STEP
        title = f"Website tidak dapat diakses: {monitor.name}"
    applied = await _open_incident(session, services, monitor, sop, entry, title, evidence, now)
    if applied is not None:
        monitor.incident_instance_id = applied.view.record.id


async def _connection_down(session: AsyncSession, satker_id: str) -> bool:
    monitors = (
        await session.scalars(
            select(MonitorRecord).where(
                col(MonitorRecord.satker_id) == satker_id, col(MonitorRecord.active)
            )
        )
    ).all()
    watched = [m for m in monitors if m.status != "maintenance"]
    sites = [m.status == "down" for m in watched if not m.is_reference]
    reference = [m.status == "down" for m in watched if m.is_reference]
    return bool(sites) and bool(reference) and all(sites) and all(reference)


async def _open_incident(
    session: AsyncSession,
    services: Services,
    monitor: MonitorRecord,
    sop: str,
    entry: str | None,
    title: str,
    evidence: dict[str, Any],
    now: datetime,
) -> Applied | None:
    if sop == NETWORK_SOP:
        # One network incident per outage: monitors going down one after the other join it.
        others = (
            await session.scalars(
                select(col(MonitorRecord.incident_instance_id)).where(
                    col(MonitorRecord.satker_id) == monitor.satker_id,
                    col(MonitorRecord.incident_instance_id).is_not(None),
                )
            )
        ).all()
        for instance_id in others:
            record = await session.get(InstanceRecord, instance_id)
            if record is not None and record.sop_code == NETWORK_SOP and record.status == "active":
                monitor.incident_instance_id = record.id
                return None
    return await instances.start_instance(
        session,
        services,
        Actor.worker(monitor.satker_id),
        sop=sop,
        title=title,
        entry_point=entry,
        context={"monitor_id": monitor.id, "evidence": evidence},
        satker=monitor.satker_id,
        started_at=None,
        now=now,
    )


async def _came_up(
    session: AsyncSession,
    services: Services,
    monitor: MonitorRecord,
    evidence: dict[str, Any],
    now: datetime,
) -> None:
    await record_finding(
        session, satker_id=monitor.satker_id, type="monitor.up",
        subject=f"monitor:{monitor.id}", data=evidence, now=now,
    )  # fmt: skip
    if monitor.incident_instance_id is None:
        return
    text = f"Pulih: {monitor.url} dapat diakses kembali ({now.isoformat()})."
    try:
        await instances.apply(
            session,
            services,
            WORKER,
            monitor.incident_instance_id,
            lambda _state, actor, _ids: Comment(actor=actor, text=text),
            if_match=None,
            now=now,
        )
    except DomainError as exc:  # closed by staff already: the finding is enough
        log.info("recovery not recorded on the incident", reason=str(exc))
    monitor.incident_instance_id = None


async def _content(
    session: AsyncSession, monitor: MonitorRecord, spec: MonitorSpec, result: Any, now: datetime
) -> None:
    if result.content_updated_at is not None:
        monitor.content_updated_at = result.content_updated_at
    if monitor.freshness_days is None:
        return
    stale = content_stale(result, spec, now)
    if stale and not monitor.content_stale_alerted:
        await record_finding(
            session, satker_id=monitor.satker_id, type="content.stale",
            subject=f"monitor:{monitor.id}",
            data={"url": monitor.url, "freshness_days": monitor.freshness_days,
                  "content_updated_at": _iso(monitor.content_updated_at)},
            now=now,
        )  # fmt: skip
    monitor.content_stale_alerted = stale


async def check_certificate(
    session: AsyncSession, monitor: MonitorRecord, options: MonitorOptions, now: datetime
) -> None:
    parts = urlsplit(monitor.url)
    if not monitor.check_certificate or parts.scheme != "https" or not parts.hostname:
        return
    if monitor.certificate_checked_at and now - monitor.certificate_checked_at < CERTIFICATE_EVERY:
        return
    monitor.certificate_checked_at = now
    try:
        status = await certificate_status(
            parts.hostname, parts.port or 443, timeout=monitor.timeout_seconds,
            ca_file=options.ca_file,
        )  # fmt: skip
    except CertificateCheckError as exc:
        log.info("certificate not read", monitor=monitor.id, error=str(exc))
        return
    if status.not_after != monitor.certificate_expires_at:
        monitor.certificate_alerted_days = None  # renewed: announce the new one afresh
    monitor.certificate_expires_at = status.not_after
    crossed = expiry_alerts(
        status.not_after, now, options.certificate_thresholds,
        already_alerted=monitor.certificate_alerted_days,
    )  # fmt: skip
    if crossed is not None:
        monitor.certificate_alerted_days = crossed
        await record_finding(
            session, satker_id=monitor.satker_id, type="certificate.expiring",
            subject=f"monitor:{monitor.id}",
            data={"url": monitor.url, "not_after": status.not_after.isoformat(),
                  "days_left": (status.not_after - now).days, "threshold_days": crossed,
                  "verification_error": status.verification_error},
            now=now,
        )  # fmt: skip


async def check_domain(
    session: AsyncSession,
    http: httpx.AsyncClient,
    monitor: MonitorRecord,
    options: MonitorOptions,
    now: datetime,
) -> None:
    host = urlsplit(monitor.url).hostname
    if not monitor.check_domain or not host or _is_address(host):
        return
    if monitor.domain_checked_at and now - monitor.domain_checked_at < DOMAIN_EVERY:
        return
    monitor.domain_checked_at = now
    try:
        expires = await domain_expiry(http, host, options.rdap)
    except (RdapError, ValueError) as exc:
        log.info("domain expiry not read", monitor=monitor.id, error=str(exc))
        return
    if expires is None:
        return
    if expires != monitor.domain_expires_at:
        monitor.domain_alerted_days = None
    monitor.domain_expires_at = expires
    crossed = expiry_alerts(
        expires, now, options.domain_thresholds, already_alerted=monitor.domain_alerted_days
    )
    if crossed is not None:
        monitor.domain_alerted_days = crossed
        await record_finding(
            session, satker_id=monitor.satker_id, type="domain.expiring",
            subject=f"monitor:{monitor.id}",
            data={"domain": host, "expires_at": expires.isoformat(),
                  "days_left": (expires - now).days, "threshold_days": crossed},
            now=now,
        )  # fmt: skip


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
