"""People and the roles they hold in someone's stead."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.core.db import JsonType, UtcDateTime
from services.core.secrets import SealedString


class PersonRecord(SQLModel, table=True):
    """Someone of a satker. `username` is unique across satkers: it is what a person
    signs in with and the `sub` of their tokens."""

    __tablename__ = "person"
    __table_args__ = (
        sa.Index("ix_person_satker_username", "satker_id", "username"),
        sa.UniqueConstraint("nip"),
    )

    username: str = Field(primary_key=True, max_length=64)
    satker_id: str = Field(foreign_key="satker.id", max_length=64)
    name: str = Field(max_length=200)
    # Nomor Induk Pegawai: the 18-digit civil-servant number (honorary staff have none).
    nip: str | None = Field(default=None, max_length=18)
    # Role ids of the catalog's roles.yaml.
    roles: list[str] = Field(default_factory=list, sa_type=JsonType)
    email: str | None = Field(default=None, max_length=254)
    whatsapp: str | None = Field(default=None, max_length=20)  # E.164
    telegram_chat_id: str | None = Field(default=None, max_length=32)
    active: bool = True
    # The channels chosen per kind of notification (`services.core.notifications.kinds`);
    # a kind not named here goes by `ALUR_NOTIFY__DEFAULT_CHANNELS`.
    notify_channels: dict[str, list[str]] = Field(default_factory=dict, sa_type=JsonType)
    # Due-soon items come once a day, together, rather than one message each.
    notify_digest: bool = False
    # Argon2id (PHC string); None: the person cannot sign in with a password.
    password_hash: str | None = Field(default=None, max_length=255)
    password_changed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # TOTP (RFC 6238): the shared secret is needed to check codes, so it is sealed, not
    # hashed. Enabled once the person proved their authenticator with a code.
    totp_secret: str | None = Field(default=None, sa_type=SealedString)
    totp_enabled: bool = False
    # The time step of the last code accepted: a code is good once.
    totp_last_step: int | None = Field(default=None, sa_type=sa.BigInteger)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class ActingRecord(SQLModel, table=True):
    """`username` holds `role` in `satker_id` from `starts_at` until `ends_at` (or until
    it was ended early, `revoked_at`), in `holder`'s stead when known."""

    __tablename__ = "acting_assignment"
    __table_args__ = (
        sa.Index("ix_acting_assignment_username_ends", "username", "ends_at"),
        sa.Index("ix_acting_assignment_satker_role_ends", "satker_id", "role", "ends_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    username: str = Field(foreign_key="person.username", max_length=64)
    role: str = Field(max_length=64)
    satker_id: str = Field(foreign_key="satker.id", max_length=64)
    kind: str = Field(max_length=8)  # plh | plt
    holder: str | None = Field(default=None, max_length=64)
    starts_at: datetime = Field(sa_type=UtcDateTime)
    ends_at: datetime = Field(sa_type=UtcDateTime)
    reason: str = Field(max_length=500)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_by: str | None = Field(default=None, max_length=200)
