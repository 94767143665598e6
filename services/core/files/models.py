"""The `evidence_file` table: one row per file attached to an instance.

The content is stored once per SHA-256 (`services.core.files.storage`); two rows with
the same hash share it. Rows are never updated or deleted through the API.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import UtcDateTime


class EvidenceFileRecord(SQLModel, table=True):
    __tablename__ = "evidence_file"
    __table_args__ = (
        sa.Index("ix_evidence_file_instance", "instance_id", "uploaded_at"),
        sa.Index("ix_evidence_file_sha256", "sha256"),
    )

    id: str = Field(primary_key=True, max_length=36)
    instance_id: str = Field(foreign_key="instance.id", max_length=36)
    satker_id: str = Field(max_length=64)
    task_id: str | None = Field(default=None, max_length=36)
    name: str = Field(max_length=255)
    media_type: str = Field(max_length=127)
    size: int = Field(sa_type=sa.BigInteger)
    sha256: str = Field(max_length=64)
    uploaded_by: str = Field(max_length=200)
    uploaded_at: datetime = Field(sa_type=UtcDateTime)
