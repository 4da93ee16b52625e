"""Baseline: intake's store as it stood when migrations began.

Submissions (idempotency), status events, tombstones of erased references, and the hashes of
the random erasure secrets given before they were derived. Intake made its tables with
`create_all` until then, and they came one at a time (submissions and status events first, the
secrets' hashes, then the tombstones); no column was ever added to a table made earlier. So a
store from before, which has no Alembic version, has some of these tables as they are described
here and lacks the later ones: this revision makes only the tables missing (what `create_all`
did at each start) and leaves the others, and their rows, as they are. On an empty database it
makes them all.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

#: The column type of every instant (`rebond_sql.types.UTCDateTime` stores it as this).
INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "intake_submissions" not in existing:
        op.create_table(
            "intake_submissions",
            sa.Column("reference", sa.String(32), primary_key=True),
            sa.Column("received_at", INSTANT, nullable=False),
            sa.Column("event_id", sa.String(64), nullable=False),
            sa.Column("idempotency_key", sa.String(255), unique=True, nullable=True),
            sa.Column("body_hash", sa.String(64), nullable=True),
            sa.Column("acknowledged", sa.Boolean, nullable=False),
        )
    if "intake_status_events" not in existing:
        op.create_table(
            "intake_status_events",
            sa.Column("event_id", sa.String(64), primary_key=True),
            sa.Column("reference", sa.String(32), nullable=False),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("at", INSTANT, nullable=False),
            sa.Column("detail", sa.JSON, nullable=False),
        )
        op.create_index("ix_intake_status_events_reference", "intake_status_events", ["reference"])
    if "intake_erasures" not in existing:
        op.create_table(
            "intake_erasures",
            sa.Column("reference_sha256", sa.String(64), primary_key=True),
            sa.Column("received_at", INSTANT, nullable=True),
            sa.Column("erased_at", INSTANT, nullable=False),
        )
    if "intake_erasure_secrets" not in existing:
        op.create_table(
            "intake_erasure_secrets",
            sa.Column("reference", sa.String(32), primary_key=True),
            sa.Column("secret_hash", sa.String(64), nullable=False),
            sa.Column("created_at", INSTANT, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("intake_erasure_secrets")
    op.drop_table("intake_erasures")
    op.drop_index("ix_intake_status_events_reference", table_name="intake_status_events")
    op.drop_table("intake_status_events")
    op.drop_table("intake_submissions")
