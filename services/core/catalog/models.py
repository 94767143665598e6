"""Catalog tables: every loaded SOP version, and the roles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import JsonType, UtcDateTime


class SopDefinitionRecord(SQLModel, table=True):
    """One immutable version of one SOP; `content` is the definition as served."""

    __tablename__ = "sop_definition"
    __table_args__ = (
        sa.UniqueConstraint("code", "version"),
        sa.Index("ix_sop_definition_current", "code", "is_current"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64)
    version: int
    number: int
    title: str = Field(max_length=300)
    content: dict[str, Any] = Field(sa_type=JsonType)
    content_hash: str = Field(max_length=64)
    is_current: bool = Field(default=False)
    loaded_at: datetime = Field(sa_type=UtcDateTime)


class RoleRecord(SQLModel, table=True):
    __tablename__ = "role"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    reports_to: str | None = Field(default=None, max_length=64)
    external: bool = Field(default=False)
    description: str | None = None
