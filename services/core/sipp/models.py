"""Per-satker SIPP check configuration, and the stored results of every check."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import BigId, JsonType, UtcDateTime


class SippConfigRecord(SQLModel, table=True):
    __tablename__ = "sipp_config"

    satker_id: str = Field(primary_key=True, foreign_key="satker.id", max_length=64)
    config: dict[str, Any] = Field(sa_type=JsonType)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class BackupCheckRecord(SQLModel, table=True):
    __tablename__ = "backup_check"
    __table_args__ = (sa.Index("ix_backup_check_satker_day", "satker_id", "day"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    satker_id: str = Field(max_length=64)
    day: date
    checked_at: datetime = Field(sa_type=UtcDateTime)
    ok: bool
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_type=JsonType)
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JsonType)
    instance_id: str | None = Field(default=None, max_length=36)
