"""`rebond_sql.migrations`: a service's Alembic migrations applied from the URL it is configured
with, once even when instances start together, and a migrated store compared with its tables.
On SQLite and PostgreSQL."""

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from rebond_sql.migrations import schema_differences, sync_url, upgrade

EXAMPLE = Path(__file__).with_name("example_migrations")
metadata = sa.MetaData()
sa.Table(
    "notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("text", sa.String(200), nullable=False),
)


def test_async_urls_are_read_with_their_sync_driver() -> None:
    """The services' async URLs work as they are; a password is kept (Alembic connects)."""
    assert sync_url("sqlite+aiosqlite:///.run/r.db") == "sqlite:///.run/r.db"
    assert sync_url("postgresql+asyncpg://u:p%40ss@h/db") == "postgresql+psycopg://u:p%40ss@h/db"
    assert sync_url("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:pw@h/db"


def test_the_migrations_make_the_tables_and_a_second_run_changes_nothing(sql_url: str) -> None:
    """After an upgrade the store has exactly the tables described; upgrading again is a no-op."""
    upgrade(sql_url, EXAMPLE)
    upgrade(sql_url, EXAMPLE)
    assert schema_differences(sql_url, metadata) == []


def test_a_difference_between_the_store_and_the_tables_is_reported(sql_url: str) -> None:
    """A column the code describes and the migrations did not make is listed."""
    upgrade(sql_url, EXAMPLE)
    wider = sa.MetaData()
    sa.Table(
        "notes", wider,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("text", sa.String(200), nullable=False),
        sa.Column("author", sa.String(50)),
    )  # fmt: skip
    [(kind, *_)] = schema_differences(sql_url, wider)
    assert kind == "add_column"


def test_a_sqlite_file_whose_folder_does_not_exist_yet_is_migrated(tmp_path: Path) -> None:
    """The default `.run/<svc>.sqlite3` of a fresh clone, given with the async driver."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'not' / 'yet' / 'store.sqlite3'}"
    upgrade(url, EXAMPLE)
    assert schema_differences(url, metadata) == []


def test_instances_migrating_together_migrate_once(postgres_url: str) -> None:
    """Three instances (processes) start at once on a new PostgreSQL database: each upgrade
    succeeds (the later ones wait for the first and find nothing left to do), and the table is
    made once."""
    script = "import sys; from pathlib import Path; from rebond_sql.migrations import upgrade; "
    script += "upgrade(sys.argv[1], Path(sys.argv[2]))"
    instances = [
        subprocess.Popen(
            [sys.executable, "-c", script, postgres_url, str(EXAMPLE)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [instance.communicate(timeout=60)[0].decode() for instance in instances]
    assert [instance.returncode for instance in instances] == [0, 0, 0], outputs
    assert schema_differences(postgres_url, metadata) == []
