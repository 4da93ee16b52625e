"""Intake's own store: submissions (for idempotency) and the status events it consumed.

No personal data is kept here: references, hashes, statuses, association ids, reason codes and
timestamps only. SQLite by default, PostgreSQL when a `postgresql+psycopg://` URL is given.
"""

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    make_url,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from rebond_intake.timeline import Record

T = TypeVar("T")


class StoreUnavailable(Exception):
    """The store could not be reached or written: the caller must not claim success."""


@dataclass(frozen=True)
class Submission:
    reference: str
    received_at: datetime
    event_id: str
    idempotency_key: str | None
    body_hash: str | None
    acknowledged: bool


class StatusStore(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def claim(self, submission: Submission, secret_hash: str) -> Submission:
        """Insert `submission` and the hash of its erasure secret in one transaction; when its
        idempotency key is already known, return that one (its secret left as it was)."""

    async def acknowledge(self, reference: str) -> None: ...
    async def release(self, reference: str) -> None:
        """Forget a submission Kafka never acknowledged, and its secret hash."""

    async def submission(self, reference: str) -> Submission | None: ...
    async def add(self, record: Record) -> bool:
        """Keep one status record; False when its event id was already kept."""

    async def records(self, reference: str) -> list[Record]: ...
    async def set_secret(self, reference: str, secret_hash: str, at: datetime) -> None:
        """Keep (or replace) the hash of the person's erasure secret for `reference`."""

    async def secret_hash(self, reference: str) -> str | None: ...
    async def expire(self, before: datetime) -> int:
        """Drop idempotency keys and body hashes of submissions received before `before`."""


metadata = MetaData()
submissions = Table(
    "intake_submissions",
    metadata,
    Column("reference", String(32), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("idempotency_key", String(255), unique=True, nullable=True),
    Column("body_hash", String(64), nullable=True),
    Column("acknowledged", Boolean, nullable=False, default=False),
)
status_events = Table(
    "intake_status_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("reference", String(32), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("detail", JSON, nullable=False),
)


#: Only a hash of each person's erasure secret (the secret itself is shown once, never kept).
erasure_secrets = Table(
    "intake_erasure_secrets",
    metadata,
    Column("reference", String(32), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _open_sqlite(url: str) -> Engine:
    """In the store's thread: the file's folder, the tables, and SQLite through its plain
    (sync) driver, whichever the URL names (`sqlite+aiosqlite` in the settings), in WAL mode with synchronous=NORMAL: a commit no longer waits for an fsync
    (the durable record of a submission is Kafka's; a power cut may lose the last few status
    rows, never corrupt the file), and readers no longer block the writer."""
    engine = create_engine(make_url(url).set(drivername="sqlite+pysqlite"))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    try:
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        with engine.begin() as connection:
            metadata.create_all(connection)
    except (SQLAlchemyError, OSError):
        engine.dispose()
        raise
    return engine


def _submission(row: Any) -> Submission:
    return Submission(
        reference=row.reference,
        received_at=_utc(row.received_at),
        event_id=row.event_id,
        idempotency_key=row.idempotency_key,
        body_hash=row.body_hash,
        acknowledged=bool(row.acknowledged),
    )


class SqlStatusStore:
    """The SQLAlchemy adapter. Each operation is a plain function of a connection, run as one
    transaction: on PostgreSQL through the async engine (`run_sync`), on SQLite whole in one
    thread of its own, with the sync driver.

    Why SQLite differs: aiosqlite hops to its thread and back for every driver call (cursor,
    execute, commit, each a wake-up of both threads), eight or so for a claim: 0.5 ms of CPU,
    nearly a third of a submission's cost, and with a pool of connections the writers also met
    "database is locked" and slept in SQLite's busy handler. With one hop per transaction a
    claim costs 0.3 ms, and one thread is SQLite's own rule anyway: one writer at a time.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._engine: AsyncEngine | None = None
        self._sync_engine: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        if self._url.startswith("sqlite"):
            self._thread = self._thread or ThreadPoolExecutor(1, "intake-sqlite")
            try:
                self._sync_engine = await asyncio.get_running_loop().run_in_executor(
                    self._thread, _open_sqlite, self._url
                )
            except (SQLAlchemyError, OSError) as error:
                raise StoreUnavailable(type(error).__name__) from error
            return
        try:
            async_engine = create_async_engine(self._url, pool_pre_ping=True)
        except SQLAlchemyError as error:
            raise StoreUnavailable(type(error).__name__) from error
        try:
            async with async_engine.begin() as connection:
                await connection.run_sync(metadata.create_all)
        except (SQLAlchemyError, OSError) as error:
            await async_engine.dispose()
            raise StoreUnavailable(type(error).__name__) from error
        self._engine = async_engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        if self._thread is not None:
            if self._sync_engine is not None:
                await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._sync_engine.dispose
                )
            self._thread.shutdown(wait=True)
            self._thread = None

    async def _run(self, work: Callable[[Connection], T]) -> T:
        """`work` in one transaction, committed when it returns. IntegrityError is passed on
        (a duplicate the caller expects); any other failure is StoreUnavailable."""
        try:
            if self._sync_engine is not None and self._thread is not None:
                return await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._in_transaction, self._sync_engine, work
                )
            if self._engine is None:
                raise StoreUnavailable("store not started")
            async with self._engine.begin() as connection:
                return await connection.run_sync(work)
        except IntegrityError:
            raise
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error

    @staticmethod
    def _in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
        with engine.begin() as connection:
            return work(connection)

    async def claim(self, submission: Submission, secret_hash: str) -> Submission:
        row = {
            "reference": submission.reference,
            "received_at": _utc(submission.received_at),
            "event_id": submission.event_id,
            "idempotency_key": submission.idempotency_key,
            "body_hash": submission.body_hash,
            "acknowledged": submission.acknowledged,
        }
        secret = {
            "reference": submission.reference,
            "secret_hash": secret_hash,
            "created_at": row["received_at"],
        }

        def insert(connection: Connection) -> None:
            connection.execute(submissions.insert(), row)
            connection.execute(erasure_secrets.insert(), secret)

        try:
            await self._run(insert)
            return submission
        except IntegrityError:
            if submission.idempotency_key is None:
                raise StoreUnavailable("reference collision") from None
        existing = await self._one(submissions.c.idempotency_key == submission.idempotency_key)
        if existing is None:  # deleted in between: a plain retry is the honest answer
            raise StoreUnavailable("idempotency key vanished")
        return existing

    async def acknowledge(self, reference: str) -> None:
        statement = (
            update(submissions)
            .where(submissions.c.reference == reference)
            .values(acknowledged=True)
        )
        await self._run(lambda connection: connection.execute(statement))

    async def release(self, reference: str) -> None:
        def delete(connection: Connection) -> None:
            connection.execute(
                erasure_secrets.delete().where(erasure_secrets.c.reference == reference)
            )
            connection.execute(submissions.delete().where(submissions.c.reference == reference))

        await self._run(delete)

    async def submission(self, reference: str) -> Submission | None:
        return await self._one(submissions.c.reference == reference)

    async def _one(self, condition: Any) -> Submission | None:
        statement = select(submissions).where(condition)
        row = await self._run(lambda connection: connection.execute(statement).first())
        return None if row is None else _submission(row)

    async def add(self, record: Record) -> bool:
        row = {
            "event_id": record.event_id,
            "reference": record.reference,
            "kind": record.kind,
            "at": _utc(record.at),
            "detail": json.loads(json.dumps(record.detail)),
        }
        try:
            await self._run(lambda connection: connection.execute(status_events.insert(), row))
        except IntegrityError:
            return False
        return True

    async def records(self, reference: str) -> list[Record]:
        statement = select(status_events).where(status_events.c.reference == reference)
        rows = await self._run(lambda connection: connection.execute(statement).all())
        return [
            Record(
                event_id=row.event_id,
                reference=row.reference,
                kind=row.kind,
                at=_utc(row.at),
                detail=dict(row.detail),
            )
            for row in rows
        ]

    async def set_secret(self, reference: str, secret_hash: str, at: datetime) -> None:
        def replace(connection: Connection) -> None:
            connection.execute(
                erasure_secrets.delete().where(erasure_secrets.c.reference == reference)
            )
            connection.execute(
                erasure_secrets.insert().values(
                    reference=reference, secret_hash=secret_hash, created_at=_utc(at)
                )
            )

        await self._run(replace)

    async def secret_hash(self, reference: str) -> str | None:
        statement = select(erasure_secrets.c.secret_hash).where(
            erasure_secrets.c.reference == reference
        )
        value = await self._run(lambda connection: connection.execute(statement).scalar())
        return str(value) if value is not None else None

    async def expire(self, before: datetime) -> int:
        """Idempotency rows simply expire: a retry after this long is a new submission."""
        statement = (
            update(submissions)
            .where(
                submissions.c.received_at < _utc(before),
                submissions.c.idempotency_key.is_not(None),
            )
            .values(idempotency_key=None, body_hash=None)
        )
        result = await self._run(lambda connection: connection.execute(statement))
        return int(result.rowcount or 0)
