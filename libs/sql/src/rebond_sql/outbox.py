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
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
    insert,
    select,
)

from rebond_sql import Database
from rebond_sql.types import UTCDateTime


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


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Relay:
    """Publishes an outbox: in order, all in flight together, each deleted once acknowledged."""

    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        send: Send,
        clock: Callable[[], datetime] = _utc_now,
        batch: int = 1000,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.send = send
        self.clock = clock
        self.batch = batch
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
        published = 0
        async with self._flushing:
            while True:
                pending = await self.database.run(
                    partial(self.outbox.pending, subjects=subjects, created_before=before,
                            limit=self.batch)
                )  # fmt: skip
                if not pending:
                    return published
                acks = [await self.send(message) for message in pending]
                results = await asyncio.gather(*acks, return_exceptions=True)
                sent = [m.id for m, result in zip(pending, results, strict=True)
                        if not isinstance(result, BaseException)]  # fmt: skip
                await self.database.run(partial(self.outbox.forget, ids=sent))
                published += len(sent)
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
                if len(pending) < self.batch:
                    return published
