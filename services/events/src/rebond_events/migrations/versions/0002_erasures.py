"""Tombstones of erased references (their SHA-256), read before inviting anyone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("reference_sha256", sa.String(64), primary_key=True),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("erasures")
