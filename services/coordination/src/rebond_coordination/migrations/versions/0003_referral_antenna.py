"""The antenna each referral is for (issue 22): `referrals.antenna`, the name the router's
directory gives it (`ReferralV1.antenna`), shown in the inbox. NULL: the association itself.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("antenna", sa.String(120)))


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("antenna")
