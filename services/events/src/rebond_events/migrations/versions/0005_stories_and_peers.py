"""Success stories, peer volunteers, the people asking for a peer and their matches (issue 24)."""

import sqlalchemy as sa
from alembic import op

from rebond_sql.types import UTCDateTime

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "stories",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("first_name", sa.String(80), nullable=True),
        sa.Column("region", sa.String(5), nullable=False),
        sa.Column("stage", sa.String(30), nullable=False),
        sa.Column("sector", sa.String(1), nullable=False),
        sa.Column("failure_year", sa.Integer(), nullable=False),
        sa.Column("helped", sa.Text(), nullable=True),
        sa.Column("locale", sa.String(5), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("moderation_note", sa.Text(), nullable=True),
        sa.Column("moderated_by", sa.String(60), nullable=True),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("moderated_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_stories_status", "stories", ["status", "region", "stage"])
    op.create_table(
        "peer_volunteers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("pseudonym", sa.String(80), nullable=False),
        sa.Column("region", sa.String(5), nullable=False),
        sa.Column("stage", sa.String(30), nullable=False),
        sa.Column("sector", sa.String(1), nullable=False),
        sa.Column("contact_channel", sa.String(10), nullable=False),
        sa.Column("contact", sa.String(254), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("availability", sa.String(200), nullable=False),
        sa.Column("monthly_limit", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(5), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_peer_volunteers_matching", "peer_volunteers", ["status", "region"])
    op.create_table(
        "peer_requests",
        sa.Column("reference", sa.String(30), primary_key=True),
        sa.Column("region", sa.String(5), nullable=False),
        sa.Column("stage", sa.String(30), nullable=False),
        sa.Column("sector", sa.String(1), nullable=True),
        sa.Column("first_name", sa.String(60), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(30), nullable=True),
        sa.Column("locale", sa.String(5), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "peer_matches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("reference", sa.String(30), nullable=False),
        sa.Column("volunteer_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("declined_by", sa.String(10), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_peer_matches_reference", "peer_matches", ["reference"])
    op.create_index("ix_peer_matches_volunteer", "peer_matches", ["volunteer_id", "created_at"])


def downgrade() -> None:
    op.drop_table("peer_matches")
    op.drop_table("peer_requests")
    op.drop_table("peer_volunteers")
    op.drop_table("stories")
