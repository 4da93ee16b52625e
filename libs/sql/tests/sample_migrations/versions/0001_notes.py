"""A table as an older store kept it: instants as seconds since the epoch in a float.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "sample_notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("text", sa.String(20), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("seen_at", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("sample_notes")
