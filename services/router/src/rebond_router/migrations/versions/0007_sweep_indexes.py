"""The deadline sweep reads only what is due: one index for each of its queries, by status and
by the query's own time (`deadline`, `remind_at`, `follow_up_at`), instead of one on status,
which each query read through for every open referral (a round's cost grew with them).
"""

from alembic import op

revision = "0007"
down_revision = "0006"

TABLE = "router_referrals"
#: The single-column indexes the sweep's queries used, and the columns each new one adds
#: after `status`.
BEFORE = ("status", "deadline", "follow_up_at")
AFTER = ("deadline", "remind_at", "follow_up_at")


def upgrade() -> None:
    for column in AFTER:
        op.create_index(f"ix_{TABLE}_status_{column}", TABLE, ["status", column])
    for column in BEFORE:
        op.drop_index(f"ix_{TABLE}_{column}", TABLE)


def downgrade() -> None:
    for column in BEFORE:
        op.create_index(f"ix_{TABLE}_{column}", TABLE, [column])
    for column in AFTER:
        op.drop_index(f"ix_{TABLE}_status_{column}", TABLE)
