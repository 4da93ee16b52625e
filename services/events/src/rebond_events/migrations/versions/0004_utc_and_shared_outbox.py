"""Every instant is a `UTCDateTime` (aware, UTC), and the outbox is `rebond_sql.outbox`'s
(`events_outbox`).

Times: the store kept naive UTC. On PostgreSQL each column becomes `timestamp with time zone`,
its values read as UTC (`AT TIME ZONE 'UTC'`): the same instants. On SQLite nothing changes on
disk: a naive UTC time and a `UTCDateTime` are the same text there.

Outbox: the messages not yet sent move to `events_outbox` in their order, each keyed and
subjected by its record key (a conference id, or an invitation's reference); those already sent
are not kept (the shared relay deletes a message once Kafka acknowledged it).
"""

import json
from datetime import UTC

import sqlalchemy as sa
from alembic import op

from rebond_sql.types import UTCDateTime

revision = "0004"
down_revision = "0003"

#: Every instant of the store, by table: (column, nullable).
INSTANTS = {
    "events": [("starts_at", False), ("ends_at", False), ("created_at", False),
               ("updated_at", False)],
    "registrations": [("queued_at", False), ("created_at", False), ("updated_at", False),
                      ("link_sent_at", True)],
    "invitations": [("created_at", False)],
    "erasures": [("erased_at", False)],
}  # fmt: skip

#: The outbox as 0001 made it: read by the upgrade, made again by the downgrade.
OLD_OUTBOX = sa.Table(
    "outbox",
    sa.MetaData(),
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("topic", sa.String(120), nullable=False),
    sa.Column("key", sa.LargeBinary(), nullable=False),
    sa.Column("value", sa.LargeBinary(), nullable=False),
    sa.Column("headers", sa.Text(), nullable=False),
    sa.Column("correlation_id", sa.String(60), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("sent_at", sa.DateTime(), nullable=True, index=True),
)


def upgrade() -> None:
    _retype(sa.DateTime(), sa.DateTime(timezone=True))
    op.create_table(
        "events_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )  # fmt: skip
    op.create_index("ix_events_outbox_subject", "events_outbox", ["subject"])
    op.create_index("ix_events_outbox_created_at", "events_outbox", ["created_at"])
    old = OLD_OUTBOX.c
    connection = op.get_bind()
    unsent = connection.execute(
        sa.select(OLD_OUTBOX).where(old.sent_at.is_(None)).order_by(old.seq)
    ).all()
    if unsent:
        connection.execute(
            sa.insert(_new_outbox()),
            [
                {"subject": bytes(row.key).decode(), "topic": row.topic,
                 "key": bytes(row.key).decode(), "value": bytes(row.value),
                 "headers": json.loads(row.headers),
                 "created_at": row.created_at.replace(tzinfo=UTC)}
                for row in unsent
            ],
        )  # fmt: skip
    op.drop_index("ix_outbox_sent_at", "outbox")
    op.drop_table("outbox")


def downgrade() -> None:
    OLD_OUTBOX.create(op.get_bind())
    connection = op.get_bind()
    new = _new_outbox()
    pending = connection.execute(sa.select(new).order_by(new.c.id)).all()
    if pending:
        connection.execute(
            sa.insert(OLD_OUTBOX),
            [
                {"event_id": row.headers["ce_id"], "topic": row.topic,
                 "key": row.key.encode(), "value": bytes(row.value),
                 "headers": json.dumps(row.headers),
                 "correlation_id": row.headers.get("ce_correlationid", row.key),
                 "created_at": row.created_at.astimezone(UTC).replace(tzinfo=None)}
                for row in pending
            ],
        )  # fmt: skip
    op.drop_table("events_outbox")
    _retype(sa.DateTime(timezone=True), sa.DateTime())


def _new_outbox() -> sa.TableClause:
    return sa.table(
        "events_outbox", sa.column("id", sa.Integer()), sa.column("subject", sa.String()),
        sa.column("topic", sa.String()), sa.column("key", sa.String()),
        sa.column("value", sa.LargeBinary()), sa.column("headers", sa.JSON()),
        sa.column("created_at", UTCDateTime()),
    )  # fmt: skip


def _retype(old: sa.DateTime, new: sa.DateTime) -> None:
    """Every instant from `old` to `new`, as the same instant in UTC. PostgreSQL only: on
    SQLite both are the same text, and the same declared type (`DATETIME`)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in INSTANTS.items():
        for column, nullable in columns:
            op.alter_column(
                table, column, type_=new, existing_type=old, existing_nullable=nullable,
                postgresql_using=f"{column} AT TIME ZONE 'UTC'",
            )  # fmt: skip
