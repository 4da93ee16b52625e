"""Registrations remember when their reminder before the conference was asked for (issue 22)."""

import sqlalchemy as sa
from alembic import op

from rebond_sql.types import UTCDateTime

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("reminded_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.drop_column("reminded_at")
