"""A piece of work is one transaction; a transaction spans awaited steps; SQLite runs in one
thread and its transactions take turns; PostgreSQL runs through the async engine."""

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError, OperationalError

from rebond_sql import Database
from rebond_testing import free_port

from .conftest import notes, texts


def _add(value: str) -> Any:
    return lambda connection: connection.execute(notes.insert().values(text=value))


async def test_a_piece_of_work_is_committed_when_it_returns(database: Database) -> None:
    await database.run(_add("kept"))
    assert await database.run(texts) == ["kept"]


async def test_a_piece_of_work_that_raises_leaves_nothing(database: Database) -> None:
    def add_then_fail(connection: Connection) -> None:
        _add("half")(connection)
        raise ValueError("midway")

    with pytest.raises(ValueError, match="midway"):
        await database.run(add_then_fail)
    assert await database.run(texts) == []


async def test_a_transaction_sees_its_own_steps_and_commits_at_its_end(database: Database) -> None:
    async with database.transaction() as transaction:
        await transaction.run(_add("first"))
        await asyncio.sleep(0)  # other coroutines run between the steps
        assert await transaction.run(texts) == ["first"]
        await transaction.run(_add("second"))
    assert await database.run(texts) == ["first", "second"]


async def test_a_transaction_that_raises_is_rolled_back(database: Database) -> None:
    with pytest.raises(RuntimeError, match="changed my mind"):
        async with database.transaction() as transaction:
            await transaction.run(_add("dropped"))
            raise RuntimeError("changed my mind")
    assert await database.run(texts) == []


async def test_a_cancelled_transaction_is_rolled_back_and_the_database_stays_usable(
    database: Database,
) -> None:
    started = asyncio.Event()

    async def interrupted() -> None:
        async with database.transaction() as transaction:
            await transaction.run(_add("interrupted"))
            started.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(interrupted())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(database.run(_add("after")), timeout=5)
    assert await database.run(texts) == ["after"]


async def test_concurrent_transactions_all_commit(database: Database) -> None:
    """Ten transactions opened together, each writing between awaits: none waits on another's
    lock until it times out ("database is locked" on SQLite), all commit."""

    async def write(n: int) -> None:
        async with database.transaction() as transaction:
            await transaction.run(_add(f"{n}-a"))
            await asyncio.sleep(0.01)
            await transaction.run(_add(f"{n}-b"))

    await asyncio.wait_for(asyncio.gather(*(write(n) for n in range(10))), timeout=20)
    assert sorted(await database.run(texts)) == sorted(
        f"{n}-{part}" for n in range(10) for part in "ab"
    )


async def test_sqlite_runs_every_step_in_one_thread_of_its_own(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/new/folder/db.sqlite3", name="one")
    try:
        threads = {await database.run(lambda _c: threading.get_ident()) for _ in range(3)}
        async with database.transaction() as transaction:
            threads.add(await transaction.run(lambda _c: threading.get_ident()))
            journal = await transaction.run(
                lambda c: c.execute(text("PRAGMA journal_mode")).scalar()
            )
        assert len(threads) == 1
        assert threading.get_ident() not in threads
        assert journal == "wal"
        assert (tmp_path / "new" / "folder" / "db.sqlite3").exists()
    finally:
        await database.close()


async def test_a_closed_database_refuses_work(database: Database) -> None:
    """A use after `close` (a shutdown-order bug) fails instead of opening it again."""
    await database.close()
    with pytest.raises(RuntimeError, match="closed"):
        await database.run(texts)


async def test_a_ping_answers_while_the_database_does(database: Database) -> None:
    """What readiness checks await: it returns on a live database, raises on a closed one and
    on a server nobody listens on."""
    await database.ping()
    await database.close()
    with pytest.raises(RuntimeError, match="closed"):
        await database.ping()
    nowhere = Database(f"postgresql+psycopg://rebond:secret@127.0.0.1:{free_port()}/rebond")
    with pytest.raises(OperationalError):
        await nowhere.ping()
    await nowhere.close()


async def test_a_failing_statement_s_error_does_not_quote_its_values(database: Database) -> None:
    """A statement's values may be a person's contact or message: the error a failing one
    raises (logged, or copied into a dead letter) names the statement, never the values."""
    await database.run(lambda c: c.execute(notes.insert().values(id=1, text="first")))
    with pytest.raises(IntegrityError) as failed:
        await database.run(
            lambda c: c.execute(notes.insert().values(id=1, text="claire@example.org"))
        )
    assert "INSERT INTO notes" in str(failed.value)
    assert "claire@example.org" not in str(failed.value)
