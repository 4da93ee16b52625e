"""`router_outbox` in the shape of every service's outbox (`rebond_sql.outbox`): `subject`
instead of `reference`, the value as bytes, the headers as JSON, a 64-bit id, `created_at`
indexed for the check of stale rows.

Rows still waiting are kept, in their order: they are outputs Kafka has not acknowledged yet,
and dropping them would lose a decision. They are copied into a new table (ids given anew in
the same order), which then takes the old one's name.
"""

import json

import sqlalchemy as sa
from alembic import op

from rebond_sql.types import UTCDateTime

revision = "0003"
down_revision = "0002"

When = sa.DateTime(timezone=True)  # what rebond_sql.types.UTCDateTime stores
NEXT = "router_outbox_next"


def upgrade() -> None:
    connection = op.get_bind()
    op.create_table(
        NEXT,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        # SQLite would otherwise give a deleted newest row's id again, which a flush in flight
        # could then forget without having sent it.
        sqlite_autoincrement=True,
    )
    old = sa.table(
        "router_outbox", sa.column("id"), sa.column("reference"), sa.column("topic"),
        sa.column("key"), sa.column("value"), sa.column("headers"),
        sa.column("created_at", UTCDateTime()),
    )  # fmt: skip
    new = sa.table(
        NEXT, sa.column("subject"), sa.column("topic"), sa.column("key"),
        sa.column("value", sa.LargeBinary()), sa.column("headers", sa.JSON()),
        sa.column("created_at", UTCDateTime()),
    )  # fmt: skip
    waiting = connection.execute(sa.select(old).order_by(old.c.id)).mappings().all()
    if waiting:
        connection.execute(
            sa.insert(new),
            [
                {"subject": row["reference"], "topic": row["topic"], "key": row["key"],
                 "value": row["value"].encode(), "headers": json.loads(row["headers"]),
                 "created_at": row["created_at"]}
                for row in waiting
            ],
        )  # fmt: skip
    op.drop_table("router_outbox")
    op.rename_table(NEXT, "router_outbox")
    if connection.dialect.name == "postgresql":  # the names PostgreSQL gave after the table's
        op.execute(f"ALTER INDEX {NEXT}_pkey RENAME TO router_outbox_pkey")
        op.execute(f"ALTER SEQUENCE {NEXT}_id_seq RENAME TO router_outbox_id_seq")
    op.create_index("ix_router_outbox_subject", "router_outbox", ["subject"])
    op.create_index("ix_router_outbox_created_at", "router_outbox", ["created_at"])


def downgrade() -> None:
    raise NotImplementedError("the outbox's former shape is not restored")
