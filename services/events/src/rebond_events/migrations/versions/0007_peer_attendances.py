"""Volunteers listed, with their consent, on the `peer_exchange` conferences they attend
(issue 24).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rebond_sql.types import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
