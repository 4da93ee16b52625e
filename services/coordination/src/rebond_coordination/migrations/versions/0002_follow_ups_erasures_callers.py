"""The follow-up answers, the erasures remembered by reference, and who will call and when; the
unsent overrides and outcomes of the outbox in the shape their events now need.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

When = sa.DateTime(timezone=True)  # what rebond_sql.types.UTCDateTime stores


def upgrade() -> None:
    op.create_table(
        "follow_ups",
        sa.Column("referral_id", sa.String(36), primary_key=True),
        sa.Column("reference", sa.String(32), nullable=False, index=True),
        sa.Column("association_id", sa.String(40), nullable=False),
        sa.Column("contacted", sa.Boolean(), nullable=False),
        sa.Column("answered_at", When, nullable=False),
    )
    op.create_table(
        "erasures",
        sa.Column("reference", sa.String(32), primary_key=True),
        sa.Column("erased_at", When, nullable=False),
    )
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("call_by", When))
        batch.add_column(sa.Column("caller", sa.String(60)))
    _reshape_unsent_messages()


def _reshape_unsent_messages() -> None:
    """Overrides and outcomes waited unsent in the outbox while no service read them; they now
    go out, and an outbox message the relay cannot read would hold every later one back. An
    override gains who asked for it (`set_by`, from its row), an outcome the day it happened
    (`on`: the contact's day, else the day it was recorded)."""
    connection = op.get_bind()
    outbox = sa.table(
        "outbox", sa.column("seq", sa.Integer), sa.column("kind", sa.String),
        sa.column("payload", sa.JSON), sa.column("sent_at", When),
    )  # fmt: skip
    overrides = sa.table("overrides", sa.column("id", sa.String), sa.column("requested_by"))
    unsent = sa.select(outbox.c.seq, outbox.c.kind, outbox.c.payload).where(
        outbox.c.sent_at.is_(None), outbox.c.kind.in_(["override", "outcome"])
    )
    for seq, kind, payload in connection.execute(unsent).all():
        changed = dict(payload)
        if kind == "override":
            requested_by = connection.execute(
                sa.select(overrides.c.requested_by).where(overrides.c.id == changed["message_id"])
            ).scalar()
            changed["set_by"] = requested_by or "unknown"
        else:
            contacted_on = changed.pop("contacted_on", None)
            changed["on"] = contacted_on or str(changed["at"])[:10]
        connection.execute(sa.update(outbox).where(outbox.c.seq == seq).values(payload=changed))


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("caller")
        batch.drop_column("call_by")
    op.drop_table("erasures")
    op.drop_table("follow_ups")
