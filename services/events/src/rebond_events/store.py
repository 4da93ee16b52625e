"""The events store: its Alembic migrations, and each use case run as one transaction on
`rebond_sql.Database` (SQLite by default, PostgreSQL with a `postgresql+psycopg://` URL).

`apply` is the unit of work: the use case runs on a `SqlRepository` of the transaction's
connection, and the messages it returns go to the outbox in that same transaction. So a change
is never announced without being stored, nor stored without being announced (at least once,
under a stable event id): the outbox's `Relay` publishes after the commit.
"""

from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection

from rebond_events.ports import Outcome, Repository
from rebond_events.repository import SqlRepository
from rebond_events.tables import OUTBOX
from rebond_sql import Database
from rebond_sql.migrations import upgrade

T = TypeVar("T")
R = TypeVar("R")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def migrate(database_url: str) -> None:
    """Bring the store at `database_url` to the latest revision (`rebond_sql.migrations`)."""
    upgrade(database_url, MIGRATIONS)


def apply(
    connection: Connection, use_case: Callable[[Repository], Outcome[T]], at: datetime
) -> Outcome[T]:
    """Run `use_case` on `connection`'s transaction and write its messages to the outbox there
    (`at`: when they were written)."""
    return _apply_on(connection, SqlRepository, use_case, at)


def _read(connection: Connection, query: Callable[[Repository], T]) -> T:
    return query(SqlRepository(connection))


def _apply_on(
    connection: Connection,
    on: Callable[[Connection], R],
    use_case: Callable[[R], Outcome[T]],
    at: datetime,
) -> Outcome[T]:
    outcome = use_case(on(connection))
    OUTBOX.add(connection, outcome.messages, at)
    return outcome


class Store:
    """The events store on a `rebond_sql.Database` of `database_url`.

    A `Database` once closed stays closed; the store opens a new one when started again after
    `close` (a test client runs an app's lifespan more than once: schemathesis ends it after
    each test), so read `database` when using it rather than keeping it.
    """

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.database = Database(database_url, name="events")
        self._closed = False

    async def start(self) -> None:
        """Open the database now, to fail fast (it opens on first use otherwise)."""
        if self._closed:
            self.database, self._closed = Database(self.url, name="events"), False
        await self.database.start()

    async def close(self) -> None:
        self._closed = True
        await self.database.close()

    async def ping(self) -> None:
        """The `SELECT 1` of readiness, on the database open now (read, not kept: see the class)."""
        await self.database.ping()

    async def apply(self, use_case: Callable[[Repository], Outcome[T]], at: datetime) -> Outcome[T]:
        """`use_case` and its messages in one transaction (see the module)."""
        return await self.database.run(partial(apply, use_case=use_case, at=at))

    async def apply_on(
        self,
        on: Callable[[Connection], R],
        use_case: Callable[[R], Outcome[T]],
        at: datetime,
    ) -> Outcome[T]:
        """As `apply`, for a use case of another view of the store (`on`, made from the
        transaction's connection): the peer exchange's and the stories' (`community`)."""
        return await self.database.run(partial(_apply_on, on=on, use_case=use_case, at=at))

    async def read(self, query: Callable[[Repository], T]) -> T:
        """`query` in a transaction of its own (it changes nothing)."""
        return await self.database.run(partial(_read, query=query))
