"""Alembic, the one way a store's schema is made and changed.

A service keeps its migrations in its package (`src/rebond_<svc>/migrations/`: `env.py`,
`script.py.mako`, `versions/0001_….py`, …) and applies them with `upgrade(database_url,
migrations_dir)`: when it starts, if `<PREFIX>_MIGRATE_ON_START` is true, and as
`python -m rebond_<svc> migrate` (a Kubernetes Job or init container). Its `env.py` is one call,
`run(metadata)`. Nothing else makes tables (no `create_all` beside the migrations): a change of
schema is a revision, and so is turning what an older version kept into today's form.

- **The store's own URL.** The services' settings say `sqlite+aiosqlite://…`; Alembic is
  synchronous, so a SQLite URL is read with the sync driver, as `rebond_sql.Database` does. A
  SQLite file's folder is made first (a fresh clone has no `.run/`).
- **Replicas starting together.** The migrations run in one transaction (DDL is transactional
  on PostgreSQL and SQLite) which first takes a lock, an advisory one on PostgreSQL, SQLite's
  write lock there: a second replica (or `migrate` run beside a start) waits for the first to
  commit, then reads the version it left and has nothing more to do. Without it both would read
  the same old version and the second would fail on tables the first made. A migration that
  fails leaves nothing half-made.
- **SQLite alters little in place**: `op.batch_alter_table` copies the table where needed;
  `epochs_to_utc` and `utc_to_epochs` change a column's type that way, values converted.
"""

import asyncio
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeEngine

from rebond_sql.types import UTCDateTime

if TYPE_CHECKING:
    from alembic.config import Config

#: The advisory lock every upgrade takes on PostgreSQL ("rebond migrations" as a 64-bit key).
MIGRATION_LOCK = 0x7265626F6E646D67


def sync_url(url: str | URL) -> URL:
    """`url` with a driver Alembic can use: SQLite's sync one (for `sqlite+aiosqlite`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite")
    return parsed


def _config(database_url: str, migrations: Path) -> "Config":
    from alembic.config import Config  # imported here: see `upgrade_apart`

    url = sync_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["url"] = url  # an object: no `%` escaping, the password never in a string
    return config


def upgrade(database_url: str, migrations: Path, revision: str = "head") -> None:
    """Bring the database at `database_url` to `revision` of the migrations in `migrations`."""
    from alembic import command  # imported here: see `upgrade_apart`

    command.upgrade(_config(database_url, migrations), revision)


def downgrade(database_url: str, migrations: Path, revision: str) -> None:
    """Take the database at `database_url` back to `revision`."""
    from alembic import command  # imported here: see `upgrade_apart`

    command.downgrade(_config(database_url, migrations), revision)


def run(metadata: sa.MetaData) -> None:
    """The whole of a service's `env.py`: run the migrations Alembic asked for against the URL
    `upgrade` gave, `metadata` being the store's tables (for `alembic revision
    --autogenerate`). Every migration runs in one transaction that first takes the database's
    migration lock (see the module), and that reads the current version only once it has it."""
    from alembic import context  # imported here: see `upgrade_apart`

    url = context.config.attributes.get("url") or make_url(
        context.config.get_main_option("sqlalchemy.url", "")
    )
    engine = _migration_engine(sync_url(url))
    try:
        with engine.connect() as connection, connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
            context.run_migrations()
    finally:
        engine.dispose()


def _migration_engine(url: URL) -> sa.Engine:
    """An engine for one migration run. On SQLite its transactions begin with `BEGIN
    IMMEDIATE`, which takes the file's write lock (waiting up to 30 s for another writer) and
    makes the DDL transactional: SQLite's driver would otherwise run DDL outside any
    transaction, and two migrations at once would both find the tables missing."""
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, poolclass=NullPool)
    engine = sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": 30.0})

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _retype(
    table: str,
    key: Sequence[str],
    columns: Mapping[str, bool],
    types: tuple[TypeEngine[Any], TypeEngine[Any]],
    convert: Callable[[Any], Any],
    table_kwargs: Mapping[str, Any],
) -> None:
    """Give `columns` of `table` (name: nullable) the type `types[1]` instead of `types[0]`,
    each value converted: a column of the new type is added and filled row by row (found by
    `key`), then takes the old one's place."""
    from alembic import op  # imported here: see `upgrade_apart`

    old_type, new_type = types
    temporary = {name: f"{name}__retyped" for name in columns}
    for name in temporary.values():
        op.add_column(table, sa.Column(name, new_type, nullable=True))
    old = sa.table(
        table, *(sa.column(k) for k in key), *(sa.column(name, old_type) for name in columns)
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(*old.c)).mappings().all()
    if rows:
        new = sa.table(
            table, *(sa.column(k) for k in key),
            *(sa.column(name, new_type) for name in temporary.values()),
        )  # fmt: skip
        statement = (
            sa.update(new)
            .where(*(new.c[k] == sa.bindparam(f"key_{k}") for k in key))
            .values({temporary[name]: sa.bindparam(f"value_{name}") for name in columns})
        )
        connection.execute(
            statement,
            [
                {**{f"key_{k}": row[k] for k in key},
                 **{f"value_{name}": convert(row[name]) for name in columns}}
                for row in rows
            ],
        )  # fmt: skip
    with op.batch_alter_table(table, table_kwargs=dict(table_kwargs)) as batch:
        for name, nullable in columns.items():
            batch.drop_column(name)
            batch.alter_column(temporary[name], new_column_name=name, nullable=nullable)


def _from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _to_epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def epochs_to_utc(
    table: str,
    key: Sequence[str],
    columns: Mapping[str, bool],
    table_kwargs: Mapping[str, Any] | None = None,
) -> None:
    """In a migration: `columns` of `table` (name: nullable), seconds since the epoch in a
    float, become `UTCDateTime` columns holding the same instants. Indexes on them are the
    migration's to drop before and make again after. `table_kwargs` go to the table SQLite
    copies (e.g. `sqlite_autoincrement`)."""
    _retype(table, key, columns, (sa.Float(), UTCDateTime()), _from_epoch, table_kwargs or {})


def utc_to_epochs(table: str, key: Sequence[str], columns: Mapping[str, bool]) -> None:
    """The way back from `epochs_to_utc` (a downgrade)."""
    _retype(table, key, columns, (UTCDateTime(), sa.Float()), _to_epoch, {})


class DatabaseUnreachable(OSError):
    """The migration's database could not be reached or opened (worth trying again later)."""


class MigrationFailed(RuntimeError):
    """A migration failed on a database that answered (a bug, which waiting would not mend)."""


#: The child's exit status when its database could not be reached (`DatabaseUnreachable`).
_UNREACHABLE = 3


async def upgrade_apart(
    migrate: Callable[[str], None], database_url: str, *, apart: bool | None = None
) -> None:
    """Run `migrate(database_url)` (a service's `store.migrate`, a module-level function) in a
    child interpreter, as a service does at start. Why: Alembic brings Mako and Pygments with
    it, about 14 MB that a service would keep for its whole life after using them once; the
    child takes them and gives them back when it exits. The URL (which may hold a password)
    goes through the child's standard input, never its command line. The child's failure is
    raised here: `DatabaseUnreachable` when the database did not answer, else
    `MigrationFailed` with the end of what the child wrote on its standard error.

    Where Alembic is already loaded in this process (a test session, which migrates its own
    stores), a child would spare nothing and cost each start a second of an interpreter's
    imports (`make check` went from 132 to 359 s): the migration then runs here, in a thread,
    with the same two errors. `apart` decides either way instead."""
    if apart is None:
        apart = "alembic" not in sys.modules
    if not apart:
        await _upgrade_here(migrate, database_url)
        return
    target = f"{migrate.__module__}:{migrate.__qualname__}"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rebond_sql.migrations", target,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await child.communicate(database_url.encode())
    except BaseException:  # cancelled (a stop during start): the child goes with it
        if child.returncode is None:
            child.kill()
            await child.wait()
        raise
    if child.returncode == 0:
        return
    said = err.decode(errors="replace").strip().splitlines()[-1:] or ["(nothing said)"]
    if child.returncode == _UNREACHABLE:
        raise DatabaseUnreachable(said[0])
    raise MigrationFailed(f"migration {target} exited {child.returncode}: {said[0]}")


async def _upgrade_here(migrate: Callable[[str], None], database_url: str) -> None:
    try:
        await asyncio.to_thread(migrate, database_url)
    except (OperationalError, OSError) as error:
        raise DatabaseUnreachable(f"database unreachable: {type(error).__name__}") from error
    except Exception as error:
        target = f"{migrate.__module__}:{migrate.__qualname__}"
        raise MigrationFailed(f"migration {target} failed: {error}") from error


def _main(target: str) -> int:
    """The child of `upgrade_apart`: the URL on standard input, `target` as `module:function`."""
    module, _, name = target.partition(":")
    migrate: Callable[[str], None] = getattr(importlib.import_module(module), name)
    try:
        migrate(sys.stdin.read())
    except (OperationalError, OSError) as error:
        print(f"database unreachable: {type(error).__name__}", file=sys.stderr)
        return _UNREACHABLE
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
