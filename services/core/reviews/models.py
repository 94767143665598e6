"""The review of one SOP in one satker, due on one day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import JsonType, UtcDateTime


class SopReviewRecord(SQLModel, table=True):
    """Opened by the worker when due (`open`), completed by the satker's Kasubbag with a
    decision (`tetap`: keep the SOP as it is, `revisi`: revise it). `performance` is the
    SOP's figures for the period the review looks back on, as they were when it opened.

    Unique per (satker, SOP, due date), and at most one open per (satker, SOP): two
    workers, or a run repeated, open a review once."""

    __tablename__ = "sop_review"
    __table_args__ = (
        sa.UniqueConstraint("satker_id", "sop_code", "due_on"),
        sa.Index(
            "uq_sop_review_open",
            "satker_id",
            "sop_code",
            unique=True,
            postgresql_where=sa.text("state = 'open'"),
            sqlite_where=sa.text("state = 'open'"),
        ),
        sa.Index("ix_sop_review_satker", "satker_id", "due_on"),
    )

    id: str = Field(primary_key=True, max_length=36)
    satker_id: str = Field(foreign_key="satker.id", max_length=64)
    sop_code: str = Field(max_length=64)
    sop_version: int
    due_on: date
    period_from: date
    period_to: date
    opened_at: datetime = Field(sa_type=UtcDateTime)
    # open | completed
    state: str = Field(default="open", max_length=16)
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    completed_by: str | None = Field(default=None, max_length=200)
    completed_by_name: str | None = Field(default=None, max_length=200)
    # The acting grant (Plh/Plt) the review was completed under, if any.
    acting_for: dict[str, Any] | None = Field(default=None, sa_type=JsonType)
    # tetap | revisi
    decision: str | None = Field(default=None, max_length=16)
    note: str | None = Field(default=None, sa_type=sa.Text)
    performance: dict[str, Any] = Field(default_factory=dict, sa_type=JsonType)
