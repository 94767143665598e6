"""Alur's token signing keys and the refresh tokens it handed out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import JsonType, UtcDateTime
from services.core.secrets import SealedString


class SigningKeyRecord(SQLModel, table=True):
    """An ES256 key. The newest one not superseded signs; every key verifies (and is
    published at /.well-known/jwks.json) until the last token it can have signed has
    expired; then it is retired and its private half wiped."""

    __tablename__ = "signing_key"
    __table_args__ = (sa.Index("ix_signing_key_retired_created", "retired_at", "created_at"),)

    kid: str = Field(primary_key=True, max_length=64)
    algorithm: str = Field(max_length=16)
    # The private scalar (the JWK's `d`), sealed like the webhook secrets; empty once
    # retired.
    private_key: str = Field(sa_type=SealedString)
    public_jwk: dict[str, Any] = Field(sa_type=JsonType)
    created_at: datetime = Field(sa_type=UtcDateTime)
    superseded_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class RefreshTokenRecord(SQLModel, table=True):
    """One refresh token, kept as its SHA-256. Each use replaces it by a new one of the
    same family; a token used twice gives itself away as stolen, and its whole family
    is revoked."""

    __tablename__ = "refresh_token"
    __table_args__ = (
        sa.Index("ix_refresh_token_family", "family_id"),
        sa.Index("ix_refresh_token_username", "username", "revoked_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    token_hash: str = Field(max_length=64, unique=True)
    family_id: str = Field(max_length=36)
    username: str = Field(foreign_key="person.username", max_length=64)
    issued_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
