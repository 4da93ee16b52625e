"""Volunteers listed, with their consent, on the `peer_exchange` conferences they attend
(issue 24).
"""

import sqlalchemy as sa
from alembic import op

from rebond_sql.types import UTCDateTime

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "peer_attendances",
        sa.Column("volunteer_id", sa.String(36), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_peer_attendances_event", "peer_attendances", ["event_id"])


def downgrade() -> None:
    op.drop_table("peer_attendances")
