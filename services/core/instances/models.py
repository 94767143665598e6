"""Instances, tasks and idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import JsonType, UtcDateTime


def past_due(due_at: Any, now: datetime) -> sa.ColumnElement[bool]:
    """`services.core.engine.state.is_overdue` in SQL: a deadline column reached at `now`
    (NULL, no deadline, is never overdue)."""
    return sa.and_(due_at.is_not(None), due_at <= now)


class InstanceRecord(SQLModel, table=True):
    """One run of one SOP version in one satker.

    `version` is the optimistic-concurrency counter (the ETag); `event_count` and
    `head_hash` seal the audit chain so that deleting its newest events is detected.
    """

    __tablename__ = "instance"
    __table_args__ = (
        sa.Index("ix_instance_satker_started", "satker_id", "started_at", "id"),
        sa.Index("ix_instance_sop_status", "sop_code", "status"),
        # The deadline sweep reads only what is due: cost follows due, not open, work.
        sa.Index(
            "ix_instance_next_check",
            "next_check_at",
            postgresql_where=sa.text("next_check_at IS NOT NULL"),
            sqlite_where=sa.text("next_check_at IS NOT NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    satker_id: str = Field(foreign_key="satker.id", max_length=64)
    sop_code: str = Field(max_length=64)
    sop_version: int
    title: str = Field(max_length=300)
    context: dict[str, Any] = Field(default_factory=dict, sa_type=JsonType)
    status: str = Field(max_length=16)
    version: int
    started_at: datetime = Field(sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    warn_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    warned_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    escalation_level: int = 0
    next_check_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_by: str = Field(max_length=200)
    event_count: int = 0
    head_hash: str = Field(default="", max_length=64)


class TaskRecord(SQLModel, table=True):
    __tablename__ = "task"
    __table_args__ = (
        sa.Index("ix_task_instance", "instance_id"),
        sa.Index("ix_task_inbox", "satker_id", "lane", "status"),
        sa.Index("ix_task_open_due", "status", "due_at"),
        # The reports read a satker's tasks of a period.
        sa.Index("ix_task_satker_opened", "satker_id", "opened_at"),
        sa.Index(
            "ix_task_next_check",
            "next_check_at",
            postgresql_where=sa.text("next_check_at IS NOT NULL"),
            sqlite_where=sa.text("next_check_at IS NOT NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    instance_id: str = Field(foreign_key="instance.id", max_length=36)
    satker_id: str = Field(max_length=64)
    sop_code: str = Field(max_length=64)
    step_id: str = Field(max_length=64)
    lane: str = Field(max_length=64)
    # The internal lane that records an external step; inboxes list the task there too.
    owner: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16)
    opened_at: datetime = Field(sa_type=UtcDateTime)
    warn_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    assignee: str | None = Field(default=None, max_length=200)
    claimed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    completed_by: str | None = Field(default=None, max_length=200)
    outcome: str | None = Field(default=None, max_length=64)
    note: str | None = None
    evidence: list[str] = Field(default_factory=list, sa_type=JsonType)
    warned_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    escalation_level: int = 0
    next_check_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    flag: str | None = None


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a request carrying an `Idempotency-Key`, for replay."""

    __tablename__ = "idempotency_key"

    satker_id: str = Field(primary_key=True, max_length=64)
    principal: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    status_code: int
    response: dict[str, Any] = Field(sa_type=JsonType)
    created_at: datetime = Field(sa_type=UtcDateTime)
