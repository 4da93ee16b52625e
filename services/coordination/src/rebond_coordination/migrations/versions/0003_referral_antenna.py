"""The antenna each referral is for (issue 22): `referrals.antenna`, the name the router's
directory gives it (`ReferralV1.antenna`), shown in the inbox. NULL: the association itself.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("antenna", sa.String(120)))


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("antenna")
