"""Alembic, run one way for every store.

A service packages its migrations beside its code (`src/rebond_<svc>/migrations/`: `env.py`,
`script.py.mako`, `versions/`) and applies them with `upgrade(database_url, that folder)`: at
start when `<PREFIX>_MIGRATE_ON_START` is true, and from `python -m rebond_<svc> migrate` (a
Kubernetes Job or init container). Its `env.py` is one call, `run_migrations(metadata)`.

- **The URL the service is configured with works as it is.** Alembic runs synchronously, so an
  async driver is read as its sync twin (`sqlite+aiosqlite` as `sqlite`, `postgresql+asyncpg`
  as `postgresql+psycopg`), and a SQLite file's folder is made first (on a fresh clone `.run/`
  does not exist yet).
- **Instances starting together migrate once.** Several replicas of a service (KEDA scales the
  consumers) start at the same moment and each applies the migrations. On PostgreSQL the whole
  upgrade is one transaction (transactional DDL) that first takes a transaction-level advisory
  lock: the second instance waits for the first to commit, then reads the version it left and
  has nothing to do, instead of failing on a table that now exists. SQLite has no such lock;
  its file is one instance's.
- `schema_differences(database_url, metadata)`: what a migrated store lacks or has beyond the
  tables the code describes (alembic's `compare_metadata`), for the test every service keeps.
"""

import hashlib
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, make_url, text
from sqlalchemy.pool import NullPool

_SYNC_DRIVERS = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql+psycopg"}
#: The advisory lock every upgrade of a PostgreSQL database takes (one key per database is
#: enough: advisory locks are scoped to the database the session is connected to).
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"rebond_sql.migrations").digest()[:8], signed=True)


def sync_url(database_url: str) -> str:
    """`database_url` with a synchronous driver (Alembic and the migrations run synchronously)."""
    url = make_url(database_url)
    driver = _SYNC_DRIVERS.get(url.drivername)
    if driver is not None:
        url = url.set(drivername=driver)
    return url.render_as_string(hide_password=False)


def upgrade(database_url: str, migrations: Path, revision: str = "head") -> None:
    """Bring the database at `database_url` to `revision` of the migrations in `migrations`."""
    url = make_url(sync_url(database_url))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(migrations))
    # ConfigParser interpolates `%`: a password holding one must be escaped.
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    command.upgrade(config, revision)


def run_migrations(metadata: MetaData) -> None:
    """The body of a service's `env.py`: run the migrations Alembic selected against the URL
    `upgrade` set, in one transaction holding the migration lock on PostgreSQL (see the
    module's docstring); offline (`alembic upgrade --sql`), print them."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no sqlalchemy.url: run the migrations through rebond_sql.migrations")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}
                    )
                context.run_migrations()
    finally:
        engine.dispose()


def schema_differences(database_url: str, metadata: MetaData) -> list[Any]:
    """How the store at `database_url` differs from `metadata` (empty: they agree), as
    alembic's `compare_metadata` lists it (tables, columns, types, indexes, constraints)."""
    engine = create_engine(sync_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context_ = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context_, metadata))
    finally:
        engine.dispose()
