"""Baseline: the router's tables as the router made them before it had migrations.

Each table and index is made only if missing: a store made by an older router (its tables came
from `create_all` at start, the newer of them missing in older stores) is taken over as it is,
a new store is made whole. What older stores need beyond their tables is `0002`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

When = sa.DateTime(timezone=True)  # what rebond_sql.types.UTCDateTime stores


def upgrade() -> None:
    op.create_table(
        "router_referrals",
        sa.Column("reference", sa.String(32), primary_key=True),
        sa.Column("decision_id", sa.String(36), nullable=False, unique=True),
        sa.Column("correlation_id", sa.String(200), nullable=False),
        sa.Column("rule_set_version", sa.String(100), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(40)),
        sa.Column("referral_id", sa.String(36)),
        sa.Column("deadline", When),
        sa.Column("remind_at", When),
        sa.Column("reminded", sa.Boolean(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("tried", sa.JSON(), nullable=False),
        sa.Column("template", sa.Text()),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", When, nullable=False),
        if_not_exists=True,
    )
    op.create_index(
        "ix_router_referrals_status", "router_referrals", ["status"], if_not_exists=True
    )
    op.create_index(
        "ix_router_referrals_deadline", "router_referrals", ["deadline"], if_not_exists=True
    )
    op.create_table(
        "router_offers",
        sa.Column("referral_id", sa.String(36), primary_key=True),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("association_id", sa.String(40), nullable=False),
        sa.Column("offered_at", When, nullable=False),
        if_not_exists=True,
    )
    op.create_index(
        "ix_router_offers_offered_at", "router_offers", ["offered_at"], if_not_exists=True
    )
    op.create_table(
        "router_week_offers",
        sa.Column("association_id", sa.String(40), primary_key=True),
        sa.Column("week_start", When, primary_key=True),
        sa.Column("offers", sa.Integer(), nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "router_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        if_not_exists=True,
    )
    op.create_index(
        "ix_router_outbox_reference", "router_outbox", ["reference"], if_not_exists=True
    )
    op.create_table(
        "router_handled_events",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("handled_at", When, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "router_erasures",
        sa.Column("reference_sha256", sa.String(64), primary_key=True),
        sa.Column("erased_at", When, nullable=False),
        if_not_exists=True,
    )


def downgrade() -> None:
    for table in (
        "router_erasures", "router_handled_events", "router_outbox", "router_week_offers",
        "router_offers", "router_referrals",
    ):  # fmt: skip
        op.drop_table(table)
