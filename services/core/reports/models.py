"""Tables of the reports: corrective actions recorded on a SOP for a period, and the
report jobs a worker builds (the AMPUH evidence pack of a large period)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import JsonType, UtcDateTime


class SopFollowUpRecord(SQLModel, table=True):
    """A corrective action (*tindak lanjut*) on a SOP for a period, not on one instance:
    what the Monev SOP form lists under the SOP beside those recorded on instances."""

    __tablename__ = "sop_follow_up"
    __table_args__ = (sa.Index("ix_sop_follow_up_period", "satker_id", "period", "sop_code"),)

    id: str = Field(primary_key=True, max_length=36)
    satker_id: str = Field(foreign_key="satker.id", max_length=64)
    sop_code: str = Field(max_length=64)
    period: str = Field(max_length=16)
    text: str
    author: str = Field(max_length=200)
    author_name: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_type=UtcDateTime)


class ReportJobRecord(SQLModel, table=True):
    """A report built by a worker: `queued`, `running` (with `progress` of `total`),
    `done` (its file in the file store under `reports/<id>`) or `failed` (`error`)."""

    __tablename__ = "report_job"
    __table_args__ = (sa.Index("ix_report_job_satker", "satker_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=36)
    satker_id: str = Field(foreign_key="satker.id", max_length=64)
    kind: str = Field(max_length=32)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JsonType)
    status: str = Field(max_length=16)
    progress: int = 0
    total: int = 0
    size: int | None = Field(default=None, sa_type=sa.BigInteger)
    sha256: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, max_length=1000)
    requested_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UtcDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
