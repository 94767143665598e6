"""The delivery sweep reads retries and expired leases from an index of their own
(`status = 'pending' AND attempts > 0`), so a backlog of first attempts waiting for the
pump does not stand between it and an attempt whose worker died.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RETRYING = sa.text("status = 'pending' AND attempts > 0")


def upgrade() -> None:
    op.create_index(
        "ix_webhook_delivery_retry",
        "webhook_delivery",
        ["next_attempt_at"],
        postgresql_where=RETRYING,
        sqlite_where=RETRYING,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_retry", table_name="webhook_delivery")
