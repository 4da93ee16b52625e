"""The antenna each referral was for (issue 22): `notifier_referrals.antenna` keeps the
referral's `AntennaV1` (the association's antenna: its name, e-mail and webhook, no personal
data) as JSON, so that the referral's reminder, expiry and withdrawal reach the antenna its
offer reached. NULL: the association itself (and every referral noted before this version).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("notifier_referrals") as batch:
        batch.add_column(sa.Column("antenna", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifier_referrals") as batch:
        batch.drop_column("antenna")
