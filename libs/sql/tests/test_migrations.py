"""`rebond_sql.migrations` on SQLite and PostgreSQL: float epochs become aware UTC instants and
back, the result is the tables the code declares, replicas starting together both succeed."""

import asyncio
import importlib
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    text,
)

from rebond_sql import Database
from rebond_sql.migrations import (
    DatabaseUnreachable,
    MigrationFailed,
    downgrade,
    upgrade,
    upgrade_apart,
)
from rebond_sql.testing import schema_differences
from rebond_sql.types import UTCDateTime

pytestmark = pytest.mark.real_migrations  # what they test is the migrations themselves

SAMPLE = Path(__file__).parent / "sample_migrations"
metadata = MetaData()
notes = Table(
    "sample_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(20), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=True),
)
#: A replica: says it is ready, waits for the word, migrates.
REPLICA = """
import sys
from rebond_sql.migrations import upgrade
print("ready", flush=True)
sys.stdin.readline()
upgrade(*sys.argv[1:])
"""
EPOCH = 1_796_550_000.25  # 2026-12-06 09:40:00.25 UTC


async def _rows(url: str, query: Any) -> Sequence[Any]:
    database = Database(url)
    try:
        return await database.run(lambda connection: connection.execute(query).all())
    finally:
        await database.close()


async def test_float_epochs_become_the_same_aware_instants_and_back(sql_url: str) -> None:
    """Rows written as floats read back as aware UTC datetimes of the same instant (NULL kept),
    the schema is then exactly the declared tables, and a downgrade gives the floats back."""
    upgrade(sql_url, SAMPLE, "0001")
    olden = Table("sample_notes", MetaData(), Column("id", Integer), Column("text", String),
                  Column("at", Float), Column("seen_at", Float))  # fmt: skip
    database = Database(sql_url)
    await database.run(
        lambda c: c.execute(
            insert(olden),
            [{"id": 1, "text": "a", "at": EPOCH, "seen_at": None},
             {"id": 2, "text": "b", "at": 0.0, "seen_at": EPOCH + 60}],
        )
    )  # fmt: skip
    await database.close()

    upgrade(sql_url, SAMPLE)
    upgrade(sql_url, SAMPLE)  # at head: nothing to do

    rows = await _rows(sql_url, select(notes).order_by(notes.c.id))
    assert [tuple(row) for row in rows] == [
        (1, "a", datetime(2026, 12, 6, 9, 40, 0, 250000, tzinfo=UTC), None),
        (2, "b", datetime(1970, 1, 1, tzinfo=UTC),
         datetime(2026, 12, 6, 9, 41, 0, 250000, tzinfo=UTC)),
    ]  # fmt: skip
    assert schema_differences(sql_url, metadata) == []

    downgrade(sql_url, SAMPLE, "0001")
    back = await _rows(sql_url, select(olden.c.at, olden.c.seen_at).order_by(olden.c.id))
    assert [tuple(row) for row in back] == [(EPOCH, None), (0.0, EPOCH + 60)]


async def test_replicas_migrating_together_both_succeed(sql_url: str) -> None:
    """Two processes upgrading one new database at the same moment (two replicas starting):
    both end well and the schema is made once."""
    pipe = asyncio.subprocess.PIPE
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            REPLICA,
            sql_url,
            str(SAMPLE),
            stdin=pipe,
            stdout=pipe,
            stderr=pipe,
        )
        for _ in range(2)
    ]
    for process in processes:  # both imported and waiting: they start together
        assert process.stdout is not None
        assert await process.stdout.readline() == b"ready\n"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
    for process in processes:
        _, errors = await process.communicate()
        assert process.returncode == 0, errors.decode()

    def version(connection: Connection) -> list[str]:
        return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())

    database = Database(sql_url)
    try:
        assert await database.run(version) == ["0002"]
    finally:
        await database.close()


def test_a_sqlite_files_folder_is_made_first(tmp_path: Path) -> None:
    """A fresh clone has no `.run/`: the folder of the SQLite file is made before migrating,
    and the async driver of the settings' URL is read as the sync one."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'not' / 'yet' / 'there.sqlite3'}"
    upgrade(url, SAMPLE)
    assert schema_differences(url, metadata) == []


SAMPLE_STORE = """
from pathlib import Path
from rebond_sql.migrations import upgrade


def migrate(url: str) -> None:
    upgrade(url, Path({sample!r}))


def broken(url: str) -> None:
    raise ValueError("revision 0003 is wrong")
"""


@pytest.fixture
def sample_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A module with a store's `migrate` (and a `broken` one), importable here and by a child
    (its folder on `sys.path` and in `PYTHONPATH`)."""
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / "sample_store.py").write_text(SAMPLE_STORE.format(sample=str(SAMPLE)))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    return importlib.import_module("sample_store")


async def test_a_migration_run_apart_makes_the_schema(
    tmp_path: Path, sample_store: ModuleType
) -> None:
    """`upgrade_apart` runs a store's `migrate` in a child interpreter: the schema is made."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'apart.sqlite3'}"
    await upgrade_apart(sample_store.migrate, url, apart=True)
    assert schema_differences(url, metadata) == []


@pytest.mark.parametrize("apart", [True, False], ids=["in a child", "here"])
async def test_a_migration_apart_says_why_it_failed(sample_store: ModuleType, apart: bool) -> None:
    """A database that cannot be opened is `DatabaseUnreachable` (to try again); a migration
    that fails is `MigrationFailed`, naming its error; in a child or here alike."""
    with pytest.raises(DatabaseUnreachable):
        await upgrade_apart(
            sample_store.migrate, "sqlite:////proc/no/such/folder/x.sqlite3", apart=apart
        )
    with pytest.raises(MigrationFailed, match="revision 0003 is wrong"):
        await upgrade_apart(sample_store.broken, "sqlite:///unused.sqlite3", apart=apart)


async def test_with_alembic_loaded_the_migration_runs_here(
    tmp_path: Path, sample_store: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that has Alembic loaded already (a test session) migrates in itself: no child
    interpreter is started, and the schema is made."""
    import alembic  # noqa: F401  (loaded, as in any test session that migrated a store)

    async def no_child(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a child interpreter was started")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", no_child)
    url = f"sqlite+aiosqlite:///{tmp_path / 'here.sqlite3'}"
    await upgrade_apart(sample_store.migrate, url)
    assert schema_differences(url, metadata) == []


#: What a service's process has no need of on SQLite (see the test below).
NOT_LOADED = {"alembic", "mako", "sqlalchemy.orm", "sqlalchemy.ext.asyncio"}


#: What `python -m rebond_<service>` imports to serve: its command line, then what building its
#: server imports (its `__main__` imports nothing of the service before the command is known).
SERVING = ("rebond_{service}.__main__", "rebond_{service}.app", "rebond_http.private")


def test_a_service_on_sqlite_loads_neither_alembic_nor_the_orm() -> None:
    """What `python -m rebond_<service>` imports to serve leaves out Alembic and Mako (the
    service migrates in a child: `upgrade_apart`) and SQLAlchemy's ORM and asyncio extension
    (only PostgreSQL's engine needs them): about 20 MB a service would keep for nothing. One
    child imports the five services in turn (one interpreter instead of five: 1.5 s each), and
    names what each one's imports brought of them."""
    services = ["intake", "router", "notifier", "events", "coordination"]
    check = (
        "import importlib, sys\n"
        f"for service in {services!r}:\n"
        f"    for module in {SERVING!r}:\n"
        "        importlib.import_module(module.format(service=service))\n"
        f"    print(service, sorted(set(sys.modules) & set({sorted(NOT_LOADED)!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.splitlines() == [f"{service} []" for service in services], done.stdout
