"""Intake's Alembic migrations make exactly the store's tables, on SQLite and PostgreSQL, and
adopt a store that intake made before it had migrations, rows included."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from rebond_intake.store import SqlStatusStore, metadata, migrate
from rebond_sql.migrations import sync_url
from rebond_sql.testing import schema_differences

pytestmark = pytest.mark.real_migrations  # what they test is the migrations themselves

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_the_migrations_make_exactly_the_stores_tables(sql_url: str) -> None:
    """No difference between a migrated database and `store.metadata`; a second run changes
    nothing."""
    migrate(sql_url)
    migrate(sql_url)
    assert schema_differences(sql_url, metadata) == []


def _made_by_the_first_intake(url: str) -> None:
    """The store as intake's first version left it (`create_all` of its two tables, no Alembic
    version), with one status event in it."""
    first = sa.MetaData()
    sa.Table(
        "intake_submissions", first,
        sa.Column("reference", sa.String(32), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), unique=True, nullable=True),
        sa.Column("body_hash", sa.String(64), nullable=True),
        sa.Column("acknowledged", sa.Boolean, nullable=False, default=False),
    )  # fmt: skip
    events = sa.Table(
        "intake_status_events", first,
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("reference", sa.String(32), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )  # fmt: skip
    engine = sa.create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            first.create_all(connection)
            connection.execute(
                events.insert(),
                {"event_id": "ev-1", "reference": "RB-AAAA-0000-0000-0000", "kind": "received",
                 "at": T0, "detail": {}},
            )  # fmt: skip
    finally:
        engine.dispose()


async def test_a_store_made_before_the_migrations_is_adopted_with_its_rows(sql_url: str) -> None:
    """The baseline makes the tables an older store lacks and keeps the ones it has: the
    schema is then today's, and the status written before reads back at its instant."""
    _made_by_the_first_intake(sql_url)
    migrate(sql_url)
    assert schema_differences(sql_url, metadata) == []
    store = SqlStatusStore(sql_url)
    await store.start()
    try:
        [record] = await store.records("RB-AAAA-0000-0000-0000")
        assert (record.event_id, record.at) == ("ev-1", T0)
        assert record.at.tzinfo is not None
    finally:
        await store.close()
