"""Intake's own store: submissions (for idempotency) and the status events it consumed.

No personal data is kept here: references, hashes, statuses, association ids, reason codes and
timestamps only. SQLite by default, PostgreSQL when a `postgresql+psycopg://` URL is given.
"""

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    MetaData,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from rebond_intake.timeline import Record
from rebond_sql import Database

T = TypeVar("T")


class StoreUnavailable(Exception):
    """The store could not be reached or written: the caller must not claim success."""


@dataclass(frozen=True)
class Submission:
    """A submission sent with an Idempotency-Key: what a retry of the key must find again."""

    reference: str
    received_at: datetime
    event_id: str
    idempotency_key: str
    body_hash: str


class StatusStore(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def claim(self, submission: Submission) -> Submission:
        """Insert `submission`; when its idempotency key is already known, return that one."""

    async def add(self, record: Record) -> bool:
        """Keep one status record; False when its event id was already kept."""

    async def add_many(self, records: Sequence[Record]) -> set[str]:
        """Keep status records in one transaction, skipping event ids already kept; the event
        ids that were new."""

    async def records(self, reference: str) -> list[Record]: ...
    async def secret_hash(self, reference: str) -> str | None:
        """The hash of the random erasure secret of a submission accepted before secrets were
        derived (`rebond_intake.erasure`); None for every later one."""

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
    #: No longer read (Kafka's own record says "received", see `timeline.received`); kept so
    #: that stores created before still take new rows.
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


#: Hashes of the random erasure secrets given before they were derived; read, no longer written.
erasure_secrets = Table(
    "intake_erasure_secrets",
    metadata,
    Column("reference", String(32), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _status_row(record: Record) -> dict[str, Any]:
    return {
        "event_id": record.event_id,
        "reference": record.reference,
        "kind": record.kind,
        "at": _utc(record.at),
        "detail": json.loads(json.dumps(record.detail)),
    }


def _claim_all(wanted: list[Submission], connection: Connection) -> dict[str, Submission]:
    """Insert the submissions whose key is new (the first of a key wins, in the batch as
    against the table) and return, by key, the submission each key now has."""
    rows = [
        {
            "reference": s.reference,
            "received_at": _utc(s.received_at),
            "event_id": s.event_id,
            "idempotency_key": s.idempotency_key,
            "body_hash": s.body_hash,
        }
        for s in wanted
    ]
    insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(insert(submissions).on_conflict_do_nothing(), rows)
    keys = list({s.idempotency_key for s in wanted})
    found = connection.execute(select(submissions).where(submissions.c.idempotency_key.in_(keys)))
    return {row.idempotency_key: _submission(row) for row in found}


def _submission(row: Any) -> Submission:
    return Submission(
        reference=row.reference,
        received_at=_utc(row.received_at),
        event_id=row.event_id,
        idempotency_key=row.idempotency_key,
        body_hash=row.body_hash,
    )


class SqlStatusStore:
    """The SQLAlchemy adapter on a `rebond_sql.Database`: each operation is a plain function
    of a connection, run as one transaction (on SQLite whole in the database's own thread with
    the sync driver; on PostgreSQL through the async engine).

    Why not aiosqlite: it hops to its thread and back for every driver call (cursor, execute,
    commit, each a wake-up of both threads), eight or so for a claim: 0.5 ms of CPU, nearly a
    third of a submission's cost. With one hop per transaction a claim costs 0.3 ms.
    """

    def __init__(self, url: str) -> None:
        self.database = Database(url, name="intake")
        self._claims: list[tuple[Submission, asyncio.Future[Submission]]] = []
        self._claiming: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the database and make the tables (again, harmlessly, when retried)."""
        try:
            await self.database.start()
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error
        await self._run(metadata.create_all)

    async def close(self) -> None:
        await self.database.close()

    async def _run(self, work: Callable[[Connection], T]) -> T:
        """`work` in one transaction, committed when it returns. IntegrityError is passed on
        (a duplicate the caller expects); any other failure is StoreUnavailable."""
        try:
            return await self.database.run(work)
        except IntegrityError:
            raise
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error

    async def claim(self, submission: Submission) -> Submission:
        """Claims are written together: those that arrive while a transaction is under way
        wait for the next, which takes them all (a group commit). Alone, a claim is written at
        once; under load, one transaction serves many, instead of one commit each."""
        future: asyncio.Future[Submission] = asyncio.get_running_loop().create_future()
        self._claims.append((submission, future))
        if self._claiming is None:
            self._claiming = asyncio.create_task(self._write_claims())
        return await future

    async def _write_claims(self) -> None:
        batch: list[tuple[Submission, asyncio.Future[Submission]]] = []
        try:
            while self._claims:
                batch, self._claims = self._claims, []
                try:
                    kept = await self._run(partial(_claim_all, [s for s, _ in batch]))
                    error = None
                except (StoreUnavailable, IntegrityError) as failure:
                    kept, error = {}, failure
                for submission, future in batch:
                    if future.done():  # its request went away
                        continue
                    found = kept.get(submission.idempotency_key)
                    if found is not None:
                        future.set_result(found)
                    else:  # the store failed, or (80 random bits) the reference was taken
                        future.set_exception(StoreUnavailable(str(error or "claim not kept")))
        except BaseException:  # a bug, or shutting down: no request may wait forever
            for _, future in batch + self._claims:
                future.cancel()
            self._claims = []
            raise
        finally:
            self._claiming = None

    async def add(self, record: Record) -> bool:
        try:
            await self._run(
                lambda connection: connection.execute(status_events.insert(), _status_row(record))
            )
        except IntegrityError:
            return False
        return True

    async def add_many(self, records: Sequence[Record]) -> set[str]:
        unique = list({record.event_id: record for record in records}.values())
        if not unique:
            return set()
        ids = [record.event_id for record in unique]

        def insert_new(connection: Connection) -> set[str]:
            query = select(status_events.c.event_id).where(status_events.c.event_id.in_(ids))
            kept = set(connection.execute(query).scalars())
            rows = [_status_row(record) for record in unique if record.event_id not in kept]
            if rows:
                connection.execute(status_events.insert(), rows)
            return {row["event_id"] for row in rows}

        try:
            return await self._run(insert_new)
        except IntegrityError:  # another writer kept some in between: one by one
            return {record.event_id for record in unique if await self.add(record)}

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
