"""The Alembic migrations build exactly the tables the models describe, on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from rebond_events.store import Base, build_engine, migrate


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_migrations_match_the_models(
    request: pytest.FixtureRequest, sqlite_url: str, database: str
) -> None:
    """After `alembic upgrade head` autogenerate finds nothing to change (and upgrading twice is a no-op)."""
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else sqlite_url
    migrate(url)
    migrate(url)
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert {"events", "registrations", "invitations", "outbox", "alembic_version"} <= tables
