"""Accounts, sessions, invitations, the human queue, the inbox, the directory, overrides, the
audit log, the outbox and the statistics facts.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

When = sa.DateTime(timezone=True)  # what rebond_sql.types.UTCDateTime stores


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("association_id", sa.String(40), index=True),
        sa.Column("departments", sa.JSON()),
        sa.Column("antenna", sa.String(120)),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.Text()),
        sa.Column("totp_secret", sa.String(64)),
        sa.Column("totp_last_counter", sa.Integer()),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_sign_ins", sa.Integer(), nullable=False),
        sa.Column("locked_until", When),
        sa.Column("created_at", When, nullable=False),
        sa.Column("last_sign_in_at", When),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("last_seen_at", When, nullable=False),
        sa.Column("revoked_at", When),
    )
    op.create_table(
        "invitations",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("invited_by", sa.String(36), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("used_at", When),
    )
    op.create_table(
        "cases",
        sa.Column("reference", sa.String(32), primary_key=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("stage", sa.String(40)),
        sa.Column("region", sa.String(8)),
        sa.Column("department", sa.String(3)),
        sa.Column("needs", sa.JSON()),
        sa.Column("cause", sa.String(40), nullable=False),
        sa.Column("tried", sa.JSON(), nullable=False),
        sa.Column("contact", sa.JSON()),
        sa.Column("queued_at", When, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("claimed_by", sa.String(36)),
        sa.Column("claimed_at", When),
        sa.Column("assigned_to", sa.String(40)),
        sa.Column("note", sa.Text()),
        sa.Column("outcome", sa.String(40)),
        sa.Column("resolved_by", sa.String(36)),
        sa.Column("resolved_at", When),
    )
    op.create_index("ix_cases_queue", "cases", ["status", "urgent", "queued_at"])
    op.create_table(
        "referrals",
        sa.Column("referral_id", sa.String(36), primary_key=True),
        sa.Column("reference", sa.String(32), nullable=False, index=True),
        sa.Column("association_id", sa.String(40), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("stage", sa.String(40)),
        sa.Column("region", sa.String(8)),
        sa.Column("department", sa.String(3)),
        sa.Column("needs", sa.JSON()),
        sa.Column("contact", sa.JSON()),
        sa.Column("message", sa.Text()),
        sa.Column("distress", sa.String(20)),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("offered_at", When, nullable=False),
        sa.Column("respond_by", When),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decline_reason", sa.String(20)),
        sa.Column("comment", sa.Text()),
        sa.Column("answered_at", When),
        sa.Column("answered_by", sa.String(36)),
        sa.Column("outcome", sa.String(30)),
        sa.Column("contacted_on", sa.String(10)),
        sa.Column("outcome_at", When),
        sa.Column("withdrawn_at", When),
        sa.Column("updated_at", When, nullable=False),
    )
    op.create_index(
        "ix_referrals_inbox", "referrals", ["association_id", "department", "offered_at"]
    )
    op.create_table(
        "directory",
        sa.Column("association_id", sa.String(40), primary_key=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("weekly_capacity", sa.Integer(), nullable=False),
        sa.Column("response_deadline_days", sa.Float(), nullable=False),
        sa.Column("rule_set_version", sa.String(100), nullable=False),
        sa.Column("observed_at", When, nullable=False),
    )
    op.create_table(
        "overrides",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("association_id", sa.String(40), nullable=False, index=True),
        sa.Column("paused", sa.Boolean()),
        sa.Column("weekly_capacity", sa.Integer()),
        sa.Column("response_deadline_days", sa.Float()),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(36), nullable=False),
        sa.Column("requested_at", When, nullable=False),
        sa.Column("applied_at", When),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", When, nullable=False, index=True),
        sa.Column("actor_id", sa.String(36)),
        sa.Column("actor_name", sa.String(120), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("association_id", sa.String(40), index=True),
        sa.Column("reference", sa.String(32)),
        sa.Column("subject", sa.String(64)),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(36), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("sent_at", When, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
    )
    op.create_table(
        "stat_facts",
        sa.Column("fact_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("at", When, nullable=False, index=True),
        sa.Column("region", sa.String(8)),
        sa.Column("stage", sa.String(40)),
        sa.Column("association_id", sa.String(40)),
        sa.Column("reason", sa.String(20)),
        sa.Column("seconds_to_answer", sa.Float()),
    )


def downgrade() -> None:
    for table in (
        "stat_facts", "outbox", "audit", "overrides", "directory", "referrals", "cases",
        "invitations", "sessions", "users",
    ):  # fmt: skip
        op.drop_table(table)
