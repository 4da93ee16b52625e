"""The transactional outbox every service uses to publish what a state change causes.

Why: a service that changes its state and then publishes can crash between the two, and lose
the event; one that publishes first can crash before its state is saved, and publish a lie. So
the events go into an outbox table **in the same transaction** as the state change, and a
`Relay` publishes them afterwards, in the order they were written, each deleted only once Kafka
acknowledged it (acks=all). A crash before the acknowledgement leaves the row: it is published
again by the next flush, under the same event id (`ce_id` travels in its headers), which readers
recognise. Rows may hold personal data (a referral's contact), so nothing is kept once sent.

`Outbox` is the table and the SQL (plain functions of a connection, inside the caller's
transaction); `Relay` is the publishing side, run by the service after its commit and by a
periodic task for what a crashed instance left behind (`older_than`).

**Publications that must not cross a later change of their subject** (a referral and its
erasure's withdrawal notice: the association must read the offer before the withdrawal, never
the other way round) take a `lock` on their subjects: the flush then reads, publishes and
forgets its messages in one transaction that holds the subjects' locks until Kafka acknowledged
them. Whoever takes the same locks exclusively (an erasure, deleting the subject's unsent
messages and writing its own) waits for that publication to be acknowledged and then finds its
messages gone; a flush that comes after the erasure finds no message of the erased subject but
the erasure's. On SQLite the flush does not hold a transaction meanwhile (it would stop every
other transaction of the store for an acknowledgement's time): a SQLite store belongs to one
process, where flushes already take turns (`Relay._flushing`), so the erasure's notices, written
after the erasure deleted the others, go out with a flush that starts once the one in flight has
its acknowledgements.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
)

from rebond_sql import Database
from rebond_sql.types import Clock, UTCDateTime, utc_now


@dataclass(frozen=True)
class Message:
    """One record to publish: its topic, key, value and headers, and the `subject` it is about
    (the submission reference, or a conference id) so a flush can pick one subject's records."""

    topic: str
    key: str
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    subject: str = ""


@dataclass(frozen=True)
class Pending(Message):
    """A message waiting in the outbox (`id`: its place in the outbox order)."""

    id: int = 0


def outbox_table(metadata: MetaData, name: str) -> Table:
    """A service's outbox table, `name` (e.g. `router_outbox`), on `metadata`."""
    return Table(
        name,
        metadata,
        # BIGINT on PostgreSQL; SQLite's rowid alias must be INTEGER to autoincrement.
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
               autoincrement=True),
        Column("subject", String(64), nullable=False, index=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("created_at", UTCDateTime, nullable=False, index=True),
        # SQLite would otherwise give a deleted newest row's id again: a flush in flight, whose
        # message an erasure deleted, would then forget the erasure's own message by that id.
        sqlite_autoincrement=True,
    )  # fmt: skip


class Outbox:
    """The SQL of one outbox table; every method runs inside the caller's transaction."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def rows(self, messages: Sequence[Message], at: datetime) -> list[dict[str, Any]]:
        """The rows of `messages`, for a caller that inserts several tables' rows together."""
        return [
            {"subject": m.subject, "topic": m.topic, "key": m.key, "value": m.value,
             "headers": dict(m.headers), "created_at": at}
            for m in messages
        ]  # fmt: skip

    def add(self, connection: Connection, messages: Sequence[Message], at: datetime) -> None:
        """Write `messages` (one multi-row INSERT), in the transaction of the state change."""
        if messages:
            connection.execute(insert(self.table), self.rows(messages, at))

    def pending(
        self,
        connection: Connection,
        subjects: Sequence[str] | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
    ) -> list[Pending]:
        """Messages not yet acknowledged, oldest first (of `subjects` only, if given)."""
        table = self.table
        query = select(table).order_by(table.c.id)
        if subjects is not None:
            query = query.where(table.c.subject.in_(list(subjects)))
        if created_before is not None:
            query = query.where(table.c.created_at <= created_before)
        if limit is not None:
            query = query.limit(limit)
        return [
            Pending(id=row.id, subject=row.subject, topic=row.topic, key=row.key,
                    value=bytes(row.value), headers=dict(row.headers))
            for row in connection.execute(query)
        ]  # fmt: skip

    def oldest(self, connection: Connection) -> datetime | None:
        """When the oldest message still waiting was written (through the `created_at` index:
        one step however many were ever sent), or None when the outbox is empty."""
        found: datetime | None = connection.execute(
            select(func.min(self.table.c.created_at))
        ).scalar()
        return found

    def forget(self, connection: Connection, ids: Sequence[int]) -> None:
        """Drop acknowledged messages."""
        if ids:
            connection.execute(delete(self.table).where(self.table.c.id.in_(list(ids))))

    def forget_subject(self, connection: Connection, subject: str) -> None:
        """Drop every unsent message about `subject` (an erasure: nothing more goes out)."""
        connection.execute(delete(self.table).where(self.table.c.subject == subject))


#: Hands a message to the producer, in call order, and returns an awaitable that completes on
#: Kafka's acknowledgement (or raises): many messages are then in flight together.
Send = Callable[[Message], Awaitable[Awaitable[object]]]

#: Takes, in a flush's transaction, the locks that publishing messages of these subjects holds
#: until Kafka acknowledged them (e.g. `rebond_sql.erasure.lock_references`, shared).
SubjectLock = Callable[[Connection, Sequence[str]], None]


class Relay:
    """Publishes an outbox: in order, all in flight together, each deleted once acknowledged."""

    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        send: Send,
        clock: Clock = utc_now,
        batch: int = 1000,
        lock: SubjectLock | None = None,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.send = send
        self.clock = clock
        self.batch = batch
        self.lock = lock
        #: Whether a flush holds its transaction (and `lock`) while Kafka acknowledges (see the
        #: module's docstring: not on SQLite).
        self._holding = lock is not None and database.dialect != "sqlite"
        # One flush at a time in this process: two concurrent flushes would publish the same
        # pending message twice, or two messages of one key out of order.
        self._flushing = asyncio.Lock()

    async def flush(
        self, subjects: Sequence[str] | None = None, older_than: timedelta | None = None
    ) -> int:
        """Publish what is pending (of `subjects`, or all; or only what is older than
        `older_than`, left behind by a crashed instance). Each message acknowledged is deleted;
        the first failure is raised once what did go out is deleted, and the rest goes with the
        next flush (same event ids). Returns how many were published."""
        before = self.clock() - older_than if older_than is not None else None
        read = partial(self._pending, subjects=subjects, created_before=before)
        published = 0
        async with self._flushing:
            while True:
                if self._holding:
                    async with self.database.transaction() as transaction:
                        pending = await transaction.run(read)
                        sent, failure = await self._publish(pending)
                        if sent:
                            await transaction.run(partial(self.outbox.forget, ids=sent))
                else:
                    pending = await self.database.run(read)
                    sent, failure = await self._publish(pending)
                    if sent:
                        await self.database.run(partial(self.outbox.forget, ids=sent))
                published += len(sent)
                if failure is not None:
                    raise failure
                if len(pending) < self.batch:
                    return published

    async def stale_at(self, older_than: timedelta) -> datetime | None:
        """When `flush(older_than=...)` will next have something to publish: the oldest
        waiting message's time plus `older_than` (in the past if one is stale already), None
        when nothing waits. A periodic flush sleeps until then instead of reading the outbox
        at a fixed pace; what is written later is published by its writer at once, or wakes
        it."""
        oldest = await self.database.run(self.outbox.oldest)
        return None if oldest is None else oldest + older_than

    def _pending(
        self,
        connection: Connection,
        subjects: Sequence[str] | None,
        created_before: datetime | None,
    ) -> list[Pending]:
        """The next batch; when holding a `lock`, read again once the locks of its subjects are
        held (what an erasure deleted meanwhile is gone from the second read)."""
        pending = self.outbox.pending(connection, subjects, created_before, self.batch)
        if self.lock is None or not self._holding or not pending:
            return pending
        held = sorted({message.subject for message in pending})
        self.lock(connection, held)
        return self.outbox.pending(connection, held, created_before, self.batch)

    async def _publish(self, pending: list[Pending]) -> tuple[list[int], BaseException | None]:
        """Hand every message over, then wait for all acknowledgements: the ids acknowledged,
        and the first failure."""
        acks = [await self.send(message) for message in pending]
        results = await asyncio.gather(*acks, return_exceptions=True)
        sent = [m.id for m, result in zip(pending, results, strict=True)
                if not isinstance(result, BaseException)]  # fmt: skip
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        return sent, failure
