"""The notifier's outbox (`notifier_outbox`, `rebond_sql.outbox`): what it publishes is written
in the transaction of what it tells, and published after the commit.

It replaces `outcome_published`, which said whether a delivery's outcome was published: the
outcomes of deliveries ended but not yet published become outbox messages here (built by this
version's `rebond_notifier.messages.outcome`: this version's relay publishes them, under the
event ids they would have had), then the column goes. A referral's `published_at` becomes
`queued_at`, when its referral was written to the outbox: a referral an older notifier noted
but could not publish (NULL) belongs to a decision not yet committed on Kafka, which is read
again and writes it to the outbox then.
"""

from datetime import UTC, datetime
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

from rebond_notifier import messages
from rebond_sql.types import UTCDateTime

revision = "0003"
down_revision = "0002"

UNPUBLISHED = "ix_notifier_deliveries_unpublished"
AUTOINCREMENT = {"sqlite_autoincrement": True}


def _outbox() -> sa.Table:
    return sa.Table(
        "notifier_outbox", sa.MetaData(),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("subject", sa.String(64), nullable=False, index=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, index=True),
        sqlite_autoincrement=True,
    )  # fmt: skip


def upgrade() -> None:
    connection = op.get_bind()
    outbox = _outbox()
    outbox.create(connection)
    deliveries = sa.table(
        "notifier_deliveries",
        *(sa.column(name) for name in ("referral_id", "channel", "kind", "reference",
                                       "association_id", "correlation_id", "status",
                                       "attempts", "outcome_published")),
    )  # fmt: skip
    ended = connection.execute(
        sa.select(deliveries)
        .where(deliveries.c.status != "pending", deliveries.c.outcome_published.is_(False))
    ).mappings()  # fmt: skip
    now = datetime.now(UTC)
    outcomes = [
        messages.outcome(SimpleNamespace(**row), row["status"], row["attempts"], now)
        for row in ended
    ]
    rows = [
        {"subject": m.subject, "topic": m.topic, "key": m.key, "value": m.value,
         "headers": dict(m.headers), "created_at": now}
        for m in outcomes if m is not None
    ]  # fmt: skip
    if rows:
        connection.execute(sa.insert(outbox), rows)
    op.drop_index(UNPUBLISHED, "notifier_deliveries")
    # SQLite copies the table: with AUTOINCREMENT again (0002), which reflection does not see.
    with op.batch_alter_table("notifier_deliveries", table_kwargs=AUTOINCREMENT) as batch:
        batch.drop_column("outcome_published")
    with op.batch_alter_table("notifier_referrals") as batch:
        batch.alter_column("published_at", new_column_name="queued_at")


def downgrade() -> None:
    """Back to `outcome_published`, every outcome taken as published, and to `published_at`
    (the outbox's unsent messages are dropped with it)."""
    with op.batch_alter_table("notifier_referrals") as batch:
        batch.alter_column("queued_at", new_column_name="published_at")
    with op.batch_alter_table("notifier_deliveries", table_kwargs=AUTOINCREMENT) as batch:
        batch.add_column(
            sa.Column("outcome_published", sa.Boolean, nullable=False, server_default=sa.true())
        )
    op.create_index(UNPUBLISHED, "notifier_deliveries", ["outcome_published", "status"])
    op.drop_table("notifier_outbox")
