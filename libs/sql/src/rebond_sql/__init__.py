"""SQLAlchemy work run from asyncio: each piece of work is a plain function of a `Connection`.

`Database.run(work)` runs `work` in a transaction of its own; `Database.transaction()` keeps one
open across several awaited steps (`Transaction.run`), committed when the block ends and rolled
back when it raises.

- **SQLite** (any `sqlite…` URL; `sqlite+aiosqlite` in the settings is read as the plain
  driver): every step runs in one thread of the database's own, with the sync driver, in WAL
  mode with synchronous=NORMAL. aiosqlite hops to its thread and back for every driver call
  (cursor, execute, fetch, close, commit: each a wake-up of both threads) and SQLAlchemy's
  async layer adds a greenlet switch to each; here a step is one hop, whatever it executes.
  Transactions take turns (an `asyncio.Lock`): SQLite has one writer at a time anyway, and the
  thread never waits for a connection another transaction holds. So a transaction should not
  await anything slow between its steps: every other caller waits for its end. And a step
  once handed to the thread runs to its end: cancelling the caller does not stop it (a `run`
  cancelled midway may still commit; a `transaction` cancelled midway is rolled back).
- **PostgreSQL** (`postgresql+psycopg://`): the async engine, its pool, each step through
  `AsyncConnection.run_sync`; transactions run side by side. SQLAlchemy's asyncio extension
  (which brings its ORM, about 6 MB) is imported only then: a service on SQLite never loads it.

WAL with synchronous=NORMAL: a commit does not wait for an fsync (a power cut may lose the last
transactions, never corrupt the file), and readers do not block the writer.

Engines hide a statement's values in their errors (`hide_parameters`): the values are what
the stores keep about people (a contact, a message), and an error's text is logged, or copied
into a dead letter, where no personal data may go.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
Work = Callable[[Connection], T]


class Transaction:
    """One open transaction: each `run` is a step on its connection."""

    def __init__(self, step: Callable[[Work[Any]], Awaitable[Any]]) -> None:
        self._step = step

    async def run(self, work: Work[T]) -> T:
        result: T = await self._step(work)
        return result


class Database:
    """A database reached from asyncio: opened on first use (`start` opens it earlier, to
    fail fast); once `close`d, using it raises."""

    def __init__(self, url: str, *, name: str = "sql", busy_timeout_s: float = 30.0) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self._name = name
        self._busy_timeout_s = busy_timeout_s
        self._engine: AsyncEngine | None = None
        self._sync_engine: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._turn = asyncio.Lock()
        self._opening = asyncio.Lock()
        self._closed = False

    async def start(self) -> None:
        """Open the engine (on SQLite: the file's folder too). Does nothing when started."""
        async with self._opening:
            if self._closed:
                raise RuntimeError(f"database {self._name} is closed")
            if self._engine is not None or self._sync_engine is not None:
                return
            if self.dialect != "sqlite":
                # imported here: see the module (PostgreSQL only)
                from sqlalchemy.ext.asyncio import create_async_engine

                self._engine = create_async_engine(
                    self.url, pool_pre_ping=True, hide_parameters=True
                )
                return
            self._thread = self._thread or ThreadPoolExecutor(1, f"{self._name}-sqlite")
            self._sync_engine = await self._in_thread(self._open_sqlite)

    async def close(self) -> None:
        self._closed = True
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        if self._thread is not None:
            if self._sync_engine is not None:
                await self._in_thread(self._sync_engine.dispose)
                self._sync_engine = None
            self._thread.shutdown(wait=True)  # idle: `dispose` was its last work
            self._thread = None

    async def run(self, work: Work[T]) -> T:
        """`work` in a transaction of its own, committed when it returns."""
        await self.start()
        if self._sync_engine is not None:
            async with self._turn:
                return await self._in_thread(_whole, self._sync_engine, work)
        async with self._async_engine().begin() as connection:
            return await connection.run_sync(work)

    async def ping(self) -> None:
        """A `SELECT 1`: what a service's readiness check awaits (`rebond_service.host.answers`),
        raising while the database cannot answer."""
        await self.run(lambda connection: connection.execute(text("SELECT 1")))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A transaction kept open over the block's steps; committed at its end."""
        await self.start()
        if self._sync_engine is None:
            async with self._async_engine().begin() as async_connection:
                yield Transaction(async_connection.run_sync)
            return
        engine = self._sync_engine
        opened: list[Connection] = []  # filled in the thread by the first step

        def step(work: Work[T]) -> T:
            if not opened:
                opened.append(_begin(engine))
            return work(opened[0])

        async with self._turn:
            try:
                yield Transaction(lambda work: self._in_thread(step, work))
            except BaseException:
                # Queued on the one thread after any step still running, even if cancelled.
                await asyncio.shield(self._in_thread(_end, opened, False))
                raise
            await self._in_thread(_end, opened, True)

    def _async_engine(self) -> "AsyncEngine":
        if self._engine is None:
            raise RuntimeError(f"database {self._name} is closed")
        return self._engine

    def _in_thread(self, function: Callable[..., T], *args: Any) -> "asyncio.Future[T]":
        if self._thread is None:
            raise RuntimeError(f"database {self._name} is closed")
        return asyncio.get_running_loop().run_in_executor(self._thread, partial(function, *args))

    def _open_sqlite(self) -> Engine:
        engine = create_engine(
            self.url.set(drivername="sqlite+pysqlite"),
            connect_args={"timeout": self._busy_timeout_s},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        return engine


def _whole(engine: Engine, work: Work[T]) -> T:
    with engine.begin() as connection:
        return work(connection)


def _begin(engine: Engine) -> Connection:
    connection = engine.connect()
    try:
        connection.begin()
    except BaseException:
        connection.close()
        raise
    return connection


def _end(opened: list[Connection], commit: bool) -> None:
    """Commit or roll back the transaction its first step opened (if any step ran)."""
    if not opened:
        return
    connection = opened.pop()
    try:
        if commit:
            connection.commit()
        else:
            connection.rollback()
    finally:
        connection.close()
