"""The person's own e-mails (issue 20): `notifier_people` keeps the address, first name and
locale of a person who consented to be contacted, from their decision's referral, until their
erasure or the end of its retention; `notifier_followups` records the answer to the 30-day
"Avez-vous été contacté·e ?" once per referral (no personal data).
"""

import sqlalchemy as sa
from alembic import op

from rebond_sql.types import UTCDateTime

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "notifier_people",
        sa.Column("reference", sa.String(32), primary_key=True),
        sa.Column("first_name", sa.String(60), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("noted_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "notifier_followups",
        sa.Column("referral_id", sa.String(36), primary_key=True),
        sa.Column("contacted", sa.Boolean, nullable=False),
        sa.Column("answered_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notifier_followups")
    op.drop_table("notifier_people")
