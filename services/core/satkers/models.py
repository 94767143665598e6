"""The satker tree and per-satker calendar overrides."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import JsonType, UtcDateTime


class SatkerRecord(SQLModel, table=True):
    """One court. A parent court (PT) reads its children's instances and acts in its
    own lane (`lane_role`) on them."""

    __tablename__ = "satker"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    parent_id: str | None = Field(default=None, foreign_key="satker.id", max_length=64)
    lane_role: str | None = Field(default=None, max_length=64)
    timezone: str = Field(default="Asia/Jakarta", max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime)


class CalendarOverrideRecord(SQLModel, table=True):
    """A local change to the working calendar: a day off, an extra working day, or
    special hours for a date range (Ramadan)."""

    __tablename__ = "calendar_override"
    __table_args__ = (sa.Index("ix_calendar_override_satker", "satker_id", "start_date"),)

    id: int | None = Field(default=None, primary_key=True)
    satker_id: str = Field(foreign_key="satker.id", max_length=64)
    kind: str = Field(max_length=32)
    start_date: date
    end_date: date
    hours: dict[str, Any] | None = Field(default=None, sa_type=JsonType)
    reason: str = Field(max_length=300)
    created_at: datetime = Field(sa_type=UtcDateTime)
