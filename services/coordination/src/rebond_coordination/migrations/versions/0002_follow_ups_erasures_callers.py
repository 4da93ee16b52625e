"""The follow-up answers, the erasures remembered by reference, and who will call and when.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

When = sa.DateTime(timezone=True)  # what rebond_sql.types.UTCDateTime stores


def upgrade() -> None:
    op.create_table(
        "follow_ups",
        sa.Column("referral_id", sa.String(36), primary_key=True),
        sa.Column("reference", sa.String(32), nullable=False, index=True),
        sa.Column("association_id", sa.String(40), nullable=False),
        sa.Column("contacted", sa.Boolean(), nullable=False),
        sa.Column("answered_at", When, nullable=False),
    )
    op.create_table(
        "erasures",
        sa.Column("reference", sa.String(32), primary_key=True),
        sa.Column("erased_at", When, nullable=False),
    )
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("call_by", When))
        batch.add_column(sa.Column("caller", sa.String(60)))


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("caller")
        batch.drop_column("call_by")
    op.drop_table("erasures")
    op.drop_table("follow_ups")
