"""What a store made by an older router lacks besides tables (the router did it at each start
before it had migrations): weekly offer counts, and tombstones instead of erasure markers.

- **Weekly counts.** A store from before `router_week_offers` had its offers only: each week
  (Monday 00:00 UTC) that has offers and no count gets its count from them. A week counted
  already is left as it is.
- **Tombstones.** An older router kept an erasure as the handled event `erasure:<reference>`
  and kept the erased row (status `erased`): each such marker becomes a tombstone (the
  reference's SHA-256), and what the erasure kept goes. A marker beside a live referral (not
  erased) was an association's answer whose id mimicked a marker: it stays what it is, an
  answer's id like any other.

Both are idempotent and do nothing on a new store.
"""

import hashlib
from collections import Counter
from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from rebond_sql.types import UTCDateTime

revision = "0002"
down_revision = "0001"

MARKER = "erasure:"

referrals = sa.table("router_referrals", sa.column("reference"), sa.column("status"))
offers = sa.table(
    "router_offers",
    sa.column("reference"),
    sa.column("association_id"),
    sa.column("offered_at", UTCDateTime()),
)
week_offers = sa.table(
    "router_week_offers",
    sa.column("association_id"),
    sa.column("week_start", UTCDateTime()),
    sa.column("offers"),
)
outbox = sa.table("router_outbox", sa.column("reference"))
handled = sa.table(
    "router_handled_events", sa.column("event_id"), sa.column("handled_at", UTCDateTime())
)
erasures = sa.table(
    "router_erasures", sa.column("reference_sha256"), sa.column("erased_at", UTCDateTime())
)


def _insert_new(connection: sa.Connection, table: sa.TableClause) -> sa.Insert:
    """INSERT … ON CONFLICT DO NOTHING (SQLite and PostgreSQL say it alike)."""
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing()


def _week(at: datetime) -> datetime:
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _count_weeks(connection: sa.Connection) -> None:
    counts = Counter(
        (association, _week(at))
        for association, at in connection.execute(
            sa.select(offers.c.association_id, offers.c.offered_at)
        )
    )
    if counts:
        connection.execute(
            _insert_new(connection, week_offers),
            [{"association_id": a, "week_start": w, "offers": n} for (a, w), n in counts.items()],
        )


def _tombstones(connection: sa.Connection) -> None:
    markers = connection.execute(
        sa.select(handled.c.event_id, handled.c.handled_at).where(
            handled.c.event_id.startswith(MARKER, autoescape=True)
        )
    ).all()
    for marker, at in markers:
        reference = marker.removeprefix(MARKER)
        status = connection.execute(
            sa.select(referrals.c.status).where(referrals.c.reference == reference)
        ).scalar()
        if status not in (None, "erased"):
            continue
        digest = hashlib.sha256(reference.encode("utf-8")).hexdigest()
        connection.execute(
            _insert_new(connection, erasures).values(reference_sha256=digest, erased_at=at)
        )
        for table in (referrals, offers, outbox):
            connection.execute(sa.delete(table).where(table.c.reference == reference))
        connection.execute(sa.delete(handled).where(handled.c.event_id == marker))


def upgrade() -> None:
    connection = op.get_bind()
    _count_weeks(connection)
    _tombstones(connection)


def downgrade() -> None:
    """Nothing to undo: the counts and tombstones are what an older router made itself."""
