"""Request and response shapes of monitors, checks, maintenance windows and renewals."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.core.validation import Instant, StrictBody, TimeZoneName, WebUrl

# Each field's type and bounds, shared by the create and the update shapes.
Name = Annotated[str, Field(min_length=1, max_length=200)]
IntervalSeconds = Annotated[int, Field(ge=10, le=86400)]
TimeoutSeconds = Annotated[float, Field(gt=0, le=60)]
ExpectedStatus = Annotated[int, Field(ge=100, le=599)]
Keyword = Annotated[str, Field(max_length=500)]
KeywordMode = Literal["present", "absent"]
Retries = Annotated[int, Field(ge=0, le=10, description="Failed checks before DOWN.")]
Confirmations = Annotated[int, Field(ge=1, le=10, description="Good checks before UP.")]
FreshnessDays = Annotated[
    int,
    Field(ge=1, le=3650, description="Alert when the content is older (public information)."),
]


class MonitorFields(StrictBody):
    name: Name
    url: WebUrl
    interval_seconds: IntervalSeconds = 60
    timeout_seconds: TimeoutSeconds = 10.0
    expected_status: ExpectedStatus = 200
    keyword: Keyword | None = None
    keyword_mode: KeywordMode = "present"
    retries: Retries = 2
    confirmations: Confirmations = 2
    freshness_days: FreshnessDays | None = None
    feed_url: WebUrl | None = Field(default=None, description="RSS/Atom feed of the site.")
    check_certificate: bool = True
    check_domain: bool = True
    is_reference: bool = Field(
        default=False, description="A target outside the court, to tell a connection outage."
    )
    active: bool = True


class MonitorCreate(MonitorFields):
    satker: str | None = Field(
        default=None, max_length=64, description="Default: the caller's satker."
    )


# Omitted: unchanged. `null` clears `keyword`, `freshness_days` and `feed_url`, and is
# refused for the others: the default is not validated, an explicit null is.
_UNCHANGED: Any = None


class MonitorUpdate(StrictBody):
    name: Name = _UNCHANGED
    url: WebUrl = _UNCHANGED
    interval_seconds: IntervalSeconds = _UNCHANGED
    timeout_seconds: TimeoutSeconds = _UNCHANGED
    expected_status: ExpectedStatus = _UNCHANGED
    keyword: Keyword | None = None
    keyword_mode: KeywordMode = _UNCHANGED
    retries: Retries = _UNCHANGED
    confirmations: Confirmations = _UNCHANGED
    freshness_days: FreshnessDays | None = None
    feed_url: WebUrl | None = None
    check_certificate: bool = _UNCHANGED
    check_domain: bool = _UNCHANGED
    is_reference: bool = _UNCHANGED
    active: bool = _UNCHANGED


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


class WindowCreate(StrictBody):
    kind: Literal["one_off", "weekly"]
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    weekday: int | None = Field(default=None, ge=0, le=6, description="0 = Monday.")
    start_time: time | None = Field(default=None, description="Local time, without offset.")
    end_time: time | None = Field(
        default=None, description="Local time; before start_time, the window runs past midnight."
    )
    timezone: TimeZoneName = "Asia/Jakarta"
    reason: str = Field(default="", max_length=300)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.kind == "one_off":
            if self.starts_at is None or self.ends_at is None:
                raise ValueError("a one-off window needs starts_at and ends_at")
            if self.ends_at <= self.starts_at:
                raise ValueError("ends_at must be after starts_at")
        else:
            if self.weekday is None or self.start_time is None or self.end_time is None:
                raise ValueError("a weekly window needs weekday, start_time and end_time")
            if self.start_time.tzinfo is not None or self.end_time.tzinfo is not None:
                raise ValueError("start_time and end_time are local times, without offset")
            if self.start_time == self.end_time:
                raise ValueError("a weekly window cannot start and end at the same time")
        return self


class WindowPublic(WindowCreate):
    id: int


class WindowList(BaseModel):
    items: list[WindowPublic]


class RenewalCreate(StrictBody):
    service: Literal["hosting", "domain", "connection"]
    name: str = Field(min_length=1, max_length=200)
    provider: str | None = Field(default=None, max_length=200)
    due_date: date = Field(ge=date(2000, 1, 1), le=date(9000, 12, 31))
    remind_days_before: int = Field(default=30, ge=0, le=365)
    satker: str | None = Field(default=None, max_length=64)


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
