"""Webhook and hook-source secrets are encrypted at rest (`services.core.secrets`): the
columns widen to hold the sealed form, and the secrets stored in plaintext until now are
sealed with the first key of ALUR_SECRETS__KEYS (or this machine's key file outside
production). The downgrade opens them again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from services.core.secrets import is_sealed, seal, unseal

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, key column, secret columns)
SECRETS = (
    ("webhook_subscription", "id", ("secret", "previous_secret")),
    ("hook_source", "name", ("secret",)),
)


def _rewrite(change: Callable[[str], str], wanted: Callable[[str], bool]) -> None:
    bind = op.get_bind()
    for name, key, columns in SECRETS:
        table = sa.table(name, sa.column(key), *(sa.column(column) for column in columns))
        for row in bind.execute(sa.select(table)).mappings().all():
            values = {
                column: change(row[column])
                for column in columns
                if row[column] is not None and wanted(row[column])
            }
            if values:
                bind.execute(sa.update(table).where(table.c[key] == row[key]).values(values))


def _width(length: int) -> None:
    for name, _, columns in SECRETS:
        with op.batch_alter_table(name, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(column, type_=sa.String(length=length))


def upgrade() -> None:
    _width(255)
    _rewrite(seal, lambda stored: not is_sealed(stored))


def downgrade() -> None:
    _rewrite(unseal, is_sealed)
    _width(100)
