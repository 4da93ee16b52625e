"""A referral is keyed by its reference and its track (`rebond_router.referral.Track`): a
reference may come to hold several referrals side by side. Every referral so far is on the
`orientation` track.
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

PRIMARY_KEY = "router_referrals_pkey"  # PostgreSQL's name for it (SQLite's has none)


def upgrade() -> None:
    track = sa.Column("track", sa.String(20), nullable=False, server_default="orientation")
    # SQLite cannot change a primary key in place: the table is copied (batch mode), and
    # SQLAlchemy warns that the copy's key is not the reflected one, which is the point.
    with (
        warnings.catch_warnings(),
        op.batch_alter_table("router_referrals") as batch,
    ):
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_router_referrals' specifies")
        batch.add_column(track)
        if op.get_bind().dialect.name == "postgresql":
            batch.drop_constraint(PRIMARY_KEY, type_="primary")
        batch.create_primary_key(PRIMARY_KEY, ["reference", "track"])
    with op.batch_alter_table("router_referrals") as batch:
        batch.alter_column("track", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("router_referrals") as batch:
        if op.get_bind().dialect.name == "postgresql":
            batch.drop_constraint(PRIMARY_KEY, type_="primary")
        batch.create_primary_key(PRIMARY_KEY, ["reference"])
        batch.drop_column("track")
