"""For tests: an effect that must wait for another transaction, a store's rows, whether its
migrations make its tables, the SQL statements sent meanwhile, and Kafka acknowledging an
outbox's messages at once."""

import asyncio
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, select, text
from sqlalchemy.pool import NullPool

from rebond_sql import Database, Work
from rebond_sql.migrations import sync_url
from rebond_sql.outbox import Message

T = TypeVar("T")


async def waits_for(
    database: Database, steps: Sequence[Work[Any]], effect: Coroutine[Any, Any, T]
) -> T:
    """Run `steps` in a transaction and, while it is open, start `effect`: it must be held up
    (`held_up`: it waits for that transaction); then commit, and return what `effect` returns
    once it could go on."""
    task: asyncio.Task[T] | None = None
    try:
        async with database.transaction() as transaction:
            for step in steps:
                await transaction.run(step)
            task = asyncio.create_task(effect)
            assert await held_up(database, task), (
                "it went ahead while the other transaction was under way"
            )
        return await asyncio.wait_for(task, timeout=10)
    finally:
        if task is not None and not task.done():
            task.cancel()


async def held_up(database: Database, task: "asyncio.Task[Any]", within_s: float = 0.5) -> bool:
    """Whether `task` is still under way after `within_s`, or, on PostgreSQL, once the server
    shows a session of `database` waiting for a lock, if sooner (`_lock_waited`): what a test
    holding a lock checks of an effect that must wait for it, without always waiting out the
    time the effect is given to go ahead wrongly."""
    watch = asyncio.create_task(_lock_waited(database))
    try:
        done, _ = await asyncio.wait([task, watch], timeout=within_s, return_when=FIRST_COMPLETED)
        if watch in done:
            watch.result()  # failing to look fails the test, rather than cutting it short
        return not task.done()
    finally:
        watch.cancel()


async def _lock_waited(database: Database) -> None:
    """Return once a session of `database` waits for a lock (PostgreSQL's `pg_stat_activity`):
    each test has a database of its own, so only what the test holds (a transaction it keeps
    open) can be waited for, and the effect cannot finish before the test lets it go. On
    SQLite, whose waits the server does not show, never."""
    if database.dialect != "postgresql":
        await asyncio.Event().wait()
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    while True:
        if await database.run(lambda connection: connection.execute(query).scalar()):
            return
        await asyncio.sleep(0.02)


@asynccontextmanager
async def tables_of(url: str, metadata: MetaData, name: str) -> AsyncIterator[Database]:
    """A `Database` at `url` with `metadata`'s tables made (without migrations: the tables of
    a library's own tests), closed when the block ends."""
    database = Database(url, name=name)
    try:
        await database.run(metadata.create_all)
        yield database
    finally:
        await database.close()


async def rows_of(database: Database, metadata: MetaData) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of `metadata`, by table name."""

    def dump(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
        return {
            table.name: [tuple(row) for row in connection.execute(select(table))]
            for table in metadata.sorted_tables
        }

    return await database.run(dump)


def schema_differences(database_url: str, metadata: MetaData) -> list[Any]:
    """What Alembic's autogenerate finds different between the database at `database_url` (as
    the migrations made it) and `metadata` (the store's tables): empty when they agree."""
    engine = create_engine(sync_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), metadata))
    finally:
        engine.dispose()


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine sends meanwhile (SQLAlchemy's `before_cursor_execute`):
    what an idle loop must not send."""
    sent: list[str] = []

    def keep(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", keep)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", keep)


def acknowledged() -> "asyncio.Future[None]":
    """Kafka's acknowledgement, already given: what a fake producer behind a relay
    (`rebond_sql.outbox.Send`) hands back for a message it takes at once."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class Acknowledging:
    """Kafka behind an outbox's relay (`send` is a `rebond_sql.outbox.Send`): keeps each message
    it is handed, in order, and acknowledges it at once."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def send(self, message: Message) -> "asyncio.Future[None]":
        self.sent.append(message)
        return acknowledged()
