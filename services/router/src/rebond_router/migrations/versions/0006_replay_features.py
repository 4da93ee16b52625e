"""A referral keeps when its first decision was made and what scoring read of the person
(stage, region, needs, company size, distress answer; no contact, no free text): the policy
preview replays them (`rebond_router.preview`). Older rows have neither and are not replayed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

When = sa.DateTime(timezone=True)  # what rebond_sql.types.UTCDateTime stores


def upgrade() -> None:
    with op.batch_alter_table("router_referrals") as batch:
        batch.add_column(sa.Column("decided_at", When))
        batch.add_column(sa.Column("features", sa.JSON()))
        batch.create_index("ix_router_referrals_decided_at", ["decided_at"])


def downgrade() -> None:
    with op.batch_alter_table("router_referrals") as batch:
        batch.drop_index("ix_router_referrals_decided_at")
        batch.drop_column("features")
        batch.drop_column("decided_at")
