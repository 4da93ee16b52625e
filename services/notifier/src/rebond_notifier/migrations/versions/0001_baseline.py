"""Baseline: the delivery log as the last notifier without migrations left it, on any older
store.

Those notifiers made their tables with `create_all` and kept no Alembic version, so this
revision also runs on their stores: it creates only what is missing, a table an older notifier
did not have yet (the tombstones, the referral states, the offered referrals) and the indexes
added later (`create_all` leaves an existing table as it is). An older notifier kept each
erased reference in clear (`notifier_erasures`) beside its rows: each becomes a tombstone (the
reference's SHA-256) and its rows go (its withdrawals were sent then); the table goes too.
Instants are still float seconds since the epoch here (0002 converts them).
"""

import sqlalchemy as sa
from alembic import op

from rebond_sql.erasure import reference_digest

revision = "0001"
down_revision = None


def _tables() -> list[sa.Table]:
    """The tables of that day, in creation order."""
    metadata = sa.MetaData()
    return [
        sa.Table(
            "notifier_deliveries", metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("referral_id", sa.String(36), nullable=False),
            sa.Column("channel", sa.String(32), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("reference", sa.String(32), nullable=False),
            sa.Column("association_id", sa.String(32), nullable=False),
            sa.Column("correlation_id", sa.String(64), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("next_attempt_at", sa.Float, nullable=False),
            sa.Column("locked_until", sa.Float, nullable=True),
            sa.Column("payload", sa.Text, nullable=True),
            sa.Column("last_error", sa.String(200), nullable=True),
            sa.Column("outcome_published", sa.Boolean, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.UniqueConstraint("referral_id", "channel", "kind",
                                name="uq_delivery_referral_channel_kind"),
            sa.Index("ix_notifier_deliveries_due", "status", "next_attempt_at"),
            sa.Index("ix_notifier_deliveries_unpublished", "outcome_published", "status"),
        ),
        sa.Table(
            "notifier_answers", metadata,
            sa.Column("referral_id", sa.String(36), primary_key=True),
            sa.Column("association_id", sa.String(32), nullable=False),
            sa.Column("answer", sa.String(16), nullable=False),
            sa.Column("reason", sa.String(32), nullable=True),
            sa.Column("answered_at", sa.Float, nullable=False),
        ),
        sa.Table(
            "notifier_referral_states", metadata,
            sa.Column("referral_id", sa.String(36), primary_key=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("rank", sa.Integer, nullable=False),
            sa.Column("at", sa.Float, nullable=False),
        ),
        sa.Table(
            "notifier_referrals", metadata,
            sa.Column("referral_id", sa.String(36), primary_key=True),
            sa.Column("reference", sa.String(32), nullable=False, index=True),
            sa.Column("association_id", sa.String(32), nullable=False),
            sa.Column("noted_at", sa.Float, nullable=False),
            sa.Column("published_at", sa.Float, nullable=True),
        ),
        sa.Table(
            "notifier_tombstones", metadata,
            sa.Column("reference_sha256", sa.String(64), primary_key=True),
            sa.Column("erased_at", sa.Float, nullable=False),
        ),
    ]  # fmt: skip


def upgrade() -> None:
    connection = op.get_bind()
    for table in _tables():
        table.create(connection, checkfirst=True)
        for index in table.indexes:
            index.create(connection, checkfirst=True)
    if sa.inspect(connection).has_table("notifier_erasures"):
        _tombstones_from_older_erasures(connection)
        op.drop_table("notifier_erasures")


def _tombstones_from_older_erasures(connection: sa.Connection) -> None:
    erasures = sa.table("notifier_erasures", sa.column("reference"), sa.column("erased_at"))
    tombstones = sa.table(
        "notifier_tombstones", sa.column("reference_sha256"), sa.column("erased_at")
    )
    deliveries = sa.table("notifier_deliveries", sa.column("reference"), sa.column("referral_id"))
    offered = sa.table("notifier_referrals", sa.column("reference"), sa.column("referral_id"))
    answers = sa.table("notifier_answers", sa.column("referral_id"))
    known = set(connection.execute(sa.select(tombstones.c.reference_sha256)).scalars())
    for reference, erased_at in connection.execute(sa.select(erasures)).all():
        digest = reference_digest(reference)
        if digest not in known:
            connection.execute(
                sa.insert(tombstones).values(reference_sha256=digest, erased_at=erased_at)
            )
            known.add(digest)
        referral_ids = sa.union(
            sa.select(deliveries.c.referral_id).where(deliveries.c.reference == reference),
            sa.select(offered.c.referral_id).where(offered.c.reference == reference),
        )
        connection.execute(sa.delete(answers).where(answers.c.referral_id.in_(referral_ids)))
        connection.execute(sa.delete(deliveries).where(deliveries.c.reference == reference))
        connection.execute(sa.delete(offered).where(offered.c.reference == reference))


def downgrade() -> None:
    for table in reversed(_tables()):
        op.drop_table(table.name)
