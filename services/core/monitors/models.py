"""Website monitors (SOP 05), their checks, maintenance windows, and service renewals."""

from __future__ import annotations

from datetime import date, datetime, time

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import BigId, UtcDateTime


class MonitorRecord(SQLModel, table=True):
    __tablename__ = "monitor"
    __table_args__ = (
        sa.Index("ix_monitor_satker", "satker_id"),
        sa.Index(
            "ix_monitor_next_check",
            "next_check_at",
            postgresql_where=sa.text("active"),
            sqlite_where=sa.text("active"),
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    satker_id: str = Field(foreign_key="satker.id", max_length=64)
    name: str = Field(max_length=200)
    url: str = Field(max_length=2000)
    interval_seconds: int = 60
    timeout_seconds: float = 10.0
    expected_status: int = 200
    keyword: str | None = Field(default=None, max_length=500)
    keyword_mode: str = Field(default="present", max_length=16)
    retries: int = 2
    confirmations: int = 2
    freshness_days: int | None = None
    feed_url: str | None = Field(default=None, max_length=2000)
    check_certificate: bool = True
    check_domain: bool = True
    # A target outside the court (e.g. a public site) that tells the court's own
    # connection apart from its websites: everything down together is the connection.
    is_reference: bool = False
    active: bool = True
    # What the rules know (status, streaks) and what the sweep has alerted already.
    status: str = Field(default="unknown", max_length=16)
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    next_check_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_checked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    certificate_checked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    certificate_expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    certificate_alerted_days: int | None = None
    domain_checked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    domain_expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    domain_alerted_days: int | None = None
    content_updated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    content_stale_alerted: bool = False
    incident_instance_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(sa_type=UtcDateTime)


class MonitorCheckRecord(SQLModel, table=True):
    __tablename__ = "monitor_check"
    __table_args__ = (sa.Index("ix_monitor_check_monitor_time", "monitor_id", "checked_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    monitor_id: str = Field(foreign_key="monitor.id", max_length=36)
    # When the check was due and when it ran: their difference is the scheduling lag.
    scheduled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    checked_at: datetime = Field(sa_type=UtcDateTime)
    up: bool
    status_code: int | None = None
    latency_ms: float | None = None
    reason: str | None = Field(default=None, max_length=64)
    error: str | None = None
    in_maintenance: bool = False


class MaintenanceWindowRecord(SQLModel, table=True):
    """A one-off window (`starts_at`..`ends_at`) or a weekly one (`weekday`, local times)."""

    __tablename__ = "maintenance_window"

    id: int | None = Field(default=None, primary_key=True)
    monitor_id: str = Field(foreign_key="monitor.id", max_length=36)
    kind: str = Field(max_length=16)
    starts_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    weekday: int | None = None
    start_time: time | None = None
    end_time: time | None = None
    timezone: str = Field(default="Asia/Jakarta", max_length=64)
    reason: str = Field(default="", max_length=300)


class RenewalRecord(SQLModel, table=True):
    """A service the court pays for (hosting, domain, connection) and when it is due."""

    __tablename__ = "renewal"
    __table_args__ = (sa.Index("ix_renewal_due", "due_date"),)

    id: str = Field(primary_key=True, max_length=36)
    satker_id: str = Field(foreign_key="satker.id", max_length=64)
    service: str = Field(max_length=32)
    name: str = Field(max_length=200)
    provider: str | None = Field(default=None, max_length=200)
    due_date: date
    remind_days_before: int = 30
    reminded_for: date | None = None
    reminder_instance_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(sa_type=UtcDateTime)
