"""Tombstones of erased references (their SHA-256), read before inviting anyone."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("reference_sha256", sa.String(64), primary_key=True),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("erasures")
