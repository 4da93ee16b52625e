"""Tracks take the contract's names (`main`, `distress`: the `orientation` track becomes
`main`), and a referral keeps what the follow-up needs: the situation the human queue is told
(`case_facts`), when the person is asked whether they were contacted (`follow_up_at`), and the
association's reported outcome (`outcome`).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

When = sa.DateTime(timezone=True)  # what rebond_sql.types.UTCDateTime stores


def upgrade() -> None:
    with op.batch_alter_table("router_referrals") as batch:
        batch.add_column(sa.Column("case_facts", sa.JSON()))
        batch.add_column(sa.Column("follow_up_at", When))
        batch.add_column(sa.Column("outcome", sa.String(30)))
        batch.create_index("ix_router_referrals_follow_up_at", ["follow_up_at"])
    op.execute("UPDATE router_referrals SET track = 'main' WHERE track = 'orientation'")


def downgrade() -> None:
    op.execute("UPDATE router_referrals SET track = 'orientation' WHERE track = 'main'")
    with op.batch_alter_table("router_referrals") as batch:
        batch.drop_index("ix_router_referrals_follow_up_at")
        batch.drop_column("outcome")
        batch.drop_column("follow_up_at")
        batch.drop_column("case_facts")
