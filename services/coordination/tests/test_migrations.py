"""The Alembic migrations make exactly the schema the code's tables describe, on SQLite and
PostgreSQL, and running them again changes nothing."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from rebond_coordination.store import migrate
from rebond_coordination.tables import metadata

from .conftest import running


def test_the_migrations_match_the_tables(sql_url: str) -> None:
    """No difference between the migrated database and `tables.metadata`; a second run is a
    no-op."""
    migrate(sql_url)
    migrate(sql_url)
    engine = create_engine(sql_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []


async def test_the_service_starts_on_a_sqlite_file_whose_folder_does_not_exist_yet(
    tmp_path: Path,
) -> None:
    """The default `.run/coordination.sqlite3` on a fresh clone: the folder is made, the
    migrations run, the store answers."""
    async with running(f"sqlite:///{tmp_path / 'not' / 'yet' / 'there.sqlite3'}") as console:
        assert (await console.client().get("/readyz")).json() == {"store": "ready"}
