"""A person asking for a peer says whether they consented to anonymous statistics
(`peer_requests.statistics_consent`), repeated on each step of their match so that the console
counts only consenting people's matches. Requests kept before it count as not consenting (never
counted without a consent).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    with op.batch_alter_table("peer_requests") as batch:
        batch.add_column(
            sa.Column("statistics_consent", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("peer_requests") as batch:
        batch.drop_column("statistics_consent")
