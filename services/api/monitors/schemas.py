"""Request and response shapes of monitors, checks, maintenance windows and renewals."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator


class MonitorFields(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    url: HttpUrl
    interval_seconds: int = Field(default=60, ge=10, le=86400)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    expected_status: int = Field(default=200, ge=100, le=599)
    keyword: str | None = Field(default=None, max_length=500)
    keyword_mode: Literal["present", "absent"] = "present"
    retries: int = Field(default=2, ge=0, le=10, description="Failed checks before DOWN.")
    confirmations: int = Field(default=2, ge=1, le=10, description="Good checks before UP.")
    freshness_days: int | None = Field(
        default=None, ge=1, description="Alert when the content is older (public information)."
    )
    feed_url: HttpUrl | None = Field(default=None, description="RSS/Atom feed of the site.")
    check_certificate: bool = True
    check_domain: bool = True
    is_reference: bool = Field(
        default=False, description="A target outside the court, to tell a connection outage."
    )
    active: bool = True


class MonitorCreate(MonitorFields):
    satker: str | None = Field(default=None, description="Default: the caller's satker.")


class MonitorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    url: HttpUrl | None = None
    interval_seconds: int | None = Field(default=None, ge=10, le=86400)
    timeout_seconds: float | None = Field(default=None, gt=0, le=60)
    expected_status: int | None = Field(default=None, ge=100, le=599)
    keyword: str | None = None
    keyword_mode: Literal["present", "absent"] | None = None
    retries: int | None = Field(default=None, ge=0, le=10)
    confirmations: int | None = Field(default=None, ge=1, le=10)
    freshness_days: int | None = None
    feed_url: HttpUrl | None = None
    check_certificate: bool | None = None
    check_domain: bool | None = None
    is_reference: bool | None = None
    active: bool | None = None


class MonitorPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    satker_id: str
    name: str
    url: str
    interval_seconds: int
    timeout_seconds: float
    expected_status: int
    keyword: str | None
    keyword_mode: str
    retries: int
    confirmations: int
    freshness_days: int | None
    feed_url: str | None
    check_certificate: bool
    check_domain: bool
    is_reference: bool
    active: bool
    state: str = Field(validation_alias="status")
    consecutive_failures: int
    consecutive_successes: int
    last_checked_at: datetime | None
    next_check_at: datetime | None
    certificate_expires_at: datetime | None
    domain_expires_at: datetime | None
    content_updated_at: datetime | None
    incident_instance_id: str | None


class MonitorList(BaseModel):
    items: list[MonitorPublic]


class CheckPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    scheduled_at: datetime | None
    checked_at: datetime
    up: bool
    status_code: int | None
    latency_ms: float | None
    reason: str | None
    error: str | None
    in_maintenance: bool


class CheckList(BaseModel):
    items: list[CheckPublic]


class WindowCreate(BaseModel):
    kind: Literal["one_off", "weekly"]
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    weekday: int | None = Field(default=None, ge=0, le=6, description="0 = Monday.")
    start_time: time | None = None
    end_time: time | None = None
    timezone: str = "Asia/Jakarta"
    reason: str = Field(default="", max_length=300)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.kind == "one_off" and not (self.starts_at and self.ends_at):
            raise ValueError("a one-off window needs starts_at and ends_at")
        if self.kind == "one_off" and self.starts_at and self.ends_at <= self.starts_at:  # type: ignore[operator]
            raise ValueError("ends_at must be after starts_at")
        if self.kind == "weekly" and (
            self.weekday is None or self.start_time is None or self.end_time is None
        ):
            raise ValueError("a weekly window needs weekday, start_time and end_time")
        return self


class WindowPublic(WindowCreate):
    id: int


class WindowList(BaseModel):
    items: list[WindowPublic]


class RenewalCreate(BaseModel):
    service: Literal["hosting", "domain", "connection"]
    name: str = Field(min_length=1, max_length=200)
    provider: str | None = Field(default=None, max_length=200)
    due_date: date
    remind_days_before: int = Field(default=30, ge=0, le=365)
    satker: str | None = None


class RenewalPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    satker_id: str
    service: str
    name: str
    provider: str | None
    due_date: date
    remind_days_before: int
    reminded_for: date | None
    reminder_instance_id: str | None


class RenewalList(BaseModel):
    items: list[RenewalPublic]
