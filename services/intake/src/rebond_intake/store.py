"""Intake's own store: submissions (for idempotency) and the status events it consumed.

What it keeps about a reference: the submission's time, event id, idempotency key and the
SHA-256 of its body (keyed submissions only, until they expire); and each status event's id,
time, association ids, statuses, decline reason codes, and a decision's reasons (their codes
and texts) and whether the person said they are in distress (`timeline.record_of`). No name,
contact, message or answer. The last two are health data when the person said they are in
distress: only the person, with their erasure secret, sees them (`timeline.build_timeline`).

Once the person asks for erasure, `erase` deletes all of that and keeps one row in
`intake_erasures`: the reference's SHA-256 (`rebond_sql.erasure`), when it was received (when
known) and when it was erased. Status events read later for an erased reference (a lagging
consumer, a replay) are dropped in the transaction that would have kept them, which takes the
reference's lock as the erasure does (`rebond_sql.erasure.lock_references`). The hashes of the
random erasure secrets of submissions older than their derivation stay, so that such a
person can still prove they hold theirs. SQLite by default, PostgreSQL when a
`postgresql+psycopg://` URL is given.

The schema is made and changed by the Alembic migrations beside this module (`migrate`), never
by the store itself; every instant is a `UTCDateTime` (aware in, aware UTC out).
"""

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import structlog
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    MetaData,
    String,
    Table,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from rebond_intake.timeline import Record, received
from rebond_kafka.backoff import Backoff
from rebond_sql import Database
from rebond_sql.erasure import lock_references, reference_digest, tombstone_table, tombstones_of
from rebond_sql.migrations import upgrade, upgrade_apart
from rebond_sql.types import UTCDateTime

T = TypeVar("T")
log = structlog.get_logger(__name__)
#: Intake's Alembic migrations (`env.py`, `versions/`), shipped inside the package.
MIGRATIONS = Path(__file__).with_name("migrations")


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
        """Keep status records in one transaction, skipping event ids already kept and records
        of erased references; the event ids that were new."""

    async def erase(
        self, reference: str, at: datetime, received_at: datetime | None = None
    ) -> None:
        """Forget everything about `reference` but that it was received (at the earliest time
        known, `received_at` included) and erased at `at`; repeating it changes nothing."""

    async def records(self, reference: str) -> list[Record]:
        """The records of `reference`; once erased, its "received" (when known) and "erasure"
        records only."""

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
    Column("received_at", UTCDateTime, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("idempotency_key", String(255), unique=True, nullable=True),
    Column("body_hash", String(64), nullable=True),
    #: No longer read (Kafka's own record says "received", see `timeline.received`); kept in
    #: the schema, so that an intake of before the migrations still writes to a migrated store.
    Column("acknowledged", Boolean, nullable=False, default=False),
)
status_events = Table(
    "intake_status_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("reference", String(32), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("detail", JSON, nullable=False),
)


#: One row per erased reference, nothing else about it (see the module's docstring).
erasures = tombstone_table(
    metadata, "intake_erasures", Column("received_at", UTCDateTime, nullable=True)
)

#: Hashes of the random erasure secrets given before they were derived; read, no longer written.
erasure_secrets = Table(
    "intake_erasure_secrets",
    metadata,
    Column("reference", String(32), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


def _status_row(record: Record) -> dict[str, Any]:
    return {
        "event_id": record.event_id,
        "reference": record.reference,
        "kind": record.kind,
        "at": record.at,
        "detail": json.loads(json.dumps(record.detail)),
    }


def _claim_all(wanted: list[Submission], connection: Connection) -> dict[str, Submission]:
    """Insert the submissions whose key is new (the first of a key wins, in the batch as
    against the table) and return, by key, the submission each key now has."""
    rows = [
        {
            "reference": s.reference,
            "received_at": s.received_at,
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
        received_at=row.received_at,
        event_id=row.event_id,
        idempotency_key=row.idempotency_key,
        body_hash=row.body_hash,
    )


def _note_received(connection: Connection, tombstone: Any, at: datetime | None) -> None:
    """Give an erased reference's tombstone its time of reception, when it had none."""
    if tombstone.received_at is None and at is not None:
        connection.execute(
            update(erasures)
            .where(erasures.c.reference_sha256 == tombstone.reference_sha256)
            .values(received_at=at)
        )


def _keep_new(records: list[Record], connection: Connection) -> set[str]:
    """Insert the records whose event id is new, but none of an erased reference (of those,
    only a time of reception not known before is noted on the tombstone)."""
    references = {record.reference for record in records}
    lock_references(connection, references, erasing=False)
    erased = tombstones_of(connection, erasures, references)
    for reference, tombstone in erased.items():
        times = [r.at for r in records if r.reference == reference and r.kind == "received"]
        _note_received(connection, tombstone, min(times, default=None))
    ids = [record.event_id for record in records]
    query = select(status_events.c.event_id).where(status_events.c.event_id.in_(ids))
    kept = set(connection.execute(query).scalars())
    rows = [
        _status_row(record)
        for record in records
        if record.event_id not in kept and record.reference not in erased
    ]
    if rows:
        connection.execute(status_events.insert(), rows)
    return {row["event_id"] for row in rows}


def _erase(
    reference: str, at: datetime, received_at: datetime | None, connection: Connection
) -> None:
    """Keep the tombstone; delete every status event and the submission row of `reference`."""
    lock_references(connection, [reference], erasing=True)
    from_status = connection.execute(
        select(func.min(status_events.c.at)).where(
            status_events.c.reference == reference, status_events.c.kind == "received"
        )
    ).scalar()
    from_claim = connection.execute(
        select(submissions.c.received_at).where(submissions.c.reference == reference)
    ).scalar()
    known = [t for t in (from_status, from_claim, received_at) if t is not None]
    first = min(known, default=None)
    tombstone = tombstones_of(connection, erasures, [reference]).get(reference)
    if tombstone is None:
        connection.execute(
            erasures.insert().values(
                reference_sha256=reference_digest(reference), received_at=first, erased_at=at
            )
        )
    else:
        _note_received(connection, tombstone, first)
    connection.execute(delete(status_events).where(status_events.c.reference == reference))
    connection.execute(delete(submissions).where(submissions.c.reference == reference))


def _records(reference: str, connection: Connection) -> list[Record]:
    tombstone = tombstones_of(connection, erasures, [reference]).get(reference)
    if tombstone is not None:
        key = tombstone.reference_sha256
        kept = [Record(f"{key}:erasure", reference, "erasure", tombstone.erased_at)]
        if tombstone.received_at is not None:
            kept.insert(0, received(f"{key}:received", reference, tombstone.received_at))
        return kept
    rows = connection.execute(select(status_events).where(status_events.c.reference == reference))
    return [
        Record(
            event_id=row.event_id,
            reference=row.reference,
            kind=row.kind,
            at=row.at,
            detail=dict(row.detail),
        )
        for row in rows
    ]


class SqlStatusStore:
    """The SQLAlchemy adapter on a `rebond_sql.Database`: each operation is a plain function
    of a connection, run as one transaction (on SQLite whole in the database's own thread with
    the sync driver; on PostgreSQL through the async engine).

    Why not aiosqlite: it hops to its thread and back for every driver call (cursor, execute,
    commit, each a wake-up of both threads), eight or so for a claim: 0.5 ms of CPU, nearly a
    third of a submission's cost. With one hop per transaction a claim costs 0.3 ms.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.database = Database(url, name="intake")
        self._claims: list[tuple[Submission, asyncio.Future[Submission]]] = []
        self._claiming: asyncio.Task[None] | None = None

    async def migrate(self) -> None:
        """Bring the database to the latest revision (`migrate`), in a thread: Alembic is
        synchronous. A database that cannot be reached or opened (OperationalError, OSError) is
        StoreUnavailable, to be tried again; a migration that fails on a database that answers
        is raised as it is (a bug, which waiting would not mend)."""
        try:
            await upgrade_apart(migrate, self.url)
        except (OperationalError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error

    async def start(self) -> None:
        """Open the database and ask it one question, so that a store that answers is one
        that is reachable (opening alone connects to nothing)."""
        try:
            await self.database.start()
        except (SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from error
        await self._run(lambda connection: connection.execute(select(1)))

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
        return record.event_id in await self.add_many([record])

    async def add_many(self, records: Sequence[Record]) -> set[str]:
        unique = list({record.event_id: record for record in records}.values())
        if not unique:
            return set()
        for _ in range(3):
            try:
                return await self._run(partial(_keep_new, unique))
            except IntegrityError:  # another writer kept some in between: they are seen now
                continue
        raise StoreUnavailable("status records kept concurrently again and again")

    async def erase(
        self, reference: str, at: datetime, received_at: datetime | None = None
    ) -> None:
        await self._run(partial(_erase, reference, at, received_at))

    async def records(self, reference: str) -> list[Record]:
        return await self._run(partial(_records, reference))

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
                submissions.c.received_at < before,
                submissions.c.idempotency_key.is_not(None),
            )
            .values(idempotency_key=None, body_hash=None)
        )
        result = await self._run(lambda connection: connection.execute(statement))
        return int(result.rowcount or 0)


def migrate(database_url: str) -> None:
    """Bring the store at `database_url` to the latest of intake's migrations (at start when
    INTAKE_MIGRATE_ON_START, and by `python -m rebond_intake migrate`)."""
    upgrade(database_url, MIGRATIONS)


async def patiently(
    work: Callable[[], Awaitable[T]],
    *,
    event: str = "store_unavailable",
    first_delay_s: float = 0.5,
    max_delay_s: float = 10.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`work`, tried again with capped, jittered backoff (`rebond_kafka.backoff`) while the
    store is unavailable, for as long as it takes: what waits (the store's opening, a
    partition's batch of statuses) loses nothing by waiting, and trying again at once would
    knock on a database that is down in a hot loop. Each wait is logged as `event`."""
    backoff = Backoff(first_s=first_delay_s, cap_s=max_delay_s)
    while True:
        try:
            return await work()
        except StoreUnavailable as error:
            delay = backoff.next_delay()
            log.warning(event, error=str(error), retry_in_s=round(delay, 2))
            await sleep(delay)
