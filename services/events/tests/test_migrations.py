"""The Alembic migrations build exactly the store's tables, on both databases."""

import pytest
from sqlalchemy import create_engine, inspect

from rebond_events.store import migrate
from rebond_events.tables import metadata
from rebond_sql.migrations import sync_url
from rebond_sql.testing import schema_differences

pytestmark = pytest.mark.real_migrations  # what they test is the migrations themselves


def test_migrations_match_the_tables(sql_url: str) -> None:
    """After the migrations autogenerate finds nothing to change (and upgrading twice is a no-op)."""
    migrate(sql_url)
    migrate(sql_url)
    assert schema_differences(sql_url, metadata) == []
    engine = create_engine(sync_url(sql_url))
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert tables == {*metadata.tables, "alembic_version"}
