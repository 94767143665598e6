"""People, acting officials (Plh/Plt) and Alur's own sign-in: the `person` and
`acting_assignment` tables, the token `signing_key`s and the `refresh_token`s, and
`audit_event.acting_for` (the role an action was taken under in someone's stead).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "person",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("nip", sa.String(length=18), nullable=True),
        sa.Column("roles", JSON, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("whatsapp", sa.String(length=20), nullable=True),
        sa.Column("telegram_chat_id", sa.String(length=32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        _time("password_changed_at", nullable=True),
        sa.Column("totp_secret", sa.String(length=255), nullable=True),
        sa.Column("totp_enabled", sa.Boolean(), nullable=False),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.ForeignKeyConstraint(
            ["satker_id"], ["satker.id"], name=op.f("fk_person_satker_id_satker")
        ),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_person")),
        sa.UniqueConstraint("nip", name=op.f("uq_person_nip")),
    )
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.create_index("ix_person_satker_username", ["satker_id", "username"], unique=False)

    op.create_table(
        "acting_assignment",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("satker_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=True),
        _time("starts_at"),
        _time("ends_at"),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _time("created_at"),
        _time("revoked_at", nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["satker_id"], ["satker.id"], name=op.f("fk_acting_assignment_satker_id_satker")
        ),
        sa.ForeignKeyConstraint(
            ["username"], ["person.username"], name=op.f("fk_acting_assignment_username_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acting_assignment")),
    )
    with op.batch_alter_table("acting_assignment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_acting_assignment_satker_role_ends", ["satker_id", "role", "ends_at"], unique=False
        )
        batch_op.create_index(
            "ix_acting_assignment_username_ends", ["username", "ends_at"], unique=False
        )

    op.create_table(
        "signing_key",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("private_key", sa.String(length=255), nullable=False),
        sa.Column("public_jwk", JSON, nullable=False),
        _time("created_at"),
        _time("superseded_at", nullable=True),
        _time("retired_at", nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_key")),
    )
    with op.batch_alter_table("signing_key", schema=None) as batch_op:
        batch_op.create_index(
            "ix_signing_key_retired_created", ["retired_at", "created_at"], unique=False
        )

    op.create_table(
        "refresh_token",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=36), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        _time("issued_at"),
        _time("expires_at"),
        _time("used_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["username"], ["person.username"], name=op.f("fk_refresh_token_username_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_token_token_hash")),
    )
    with op.batch_alter_table("refresh_token", schema=None) as batch_op:
        batch_op.create_index("ix_refresh_token_family", ["family_id"], unique=False)
        batch_op.create_index("ix_refresh_token_username", ["username", "revoked_at"], unique=False)

    # Nullable, no default: PostgreSQL adds it without rewriting the table.
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acting_for", JSON, nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # A batch copy would drop and recreate audit_event, which the outbox's foreign
        # keys forbid once events exist; SQLite 3.35+ drops a column in place.
        op.execute("ALTER TABLE audit_event DROP COLUMN acting_for")
    else:
        op.drop_column("audit_event", "acting_for")
    op.drop_table("refresh_token")
    op.drop_table("signing_key")
    op.drop_table("acting_assignment")
    op.drop_table("person")
