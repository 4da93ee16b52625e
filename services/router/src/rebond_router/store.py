"""The router's own store (SQLAlchemy 2 through `rebond_sql`): referrals, offers, an outbox, handled events.

SQLite (a file) by default, PostgreSQL supported. Each state change and the events it must
publish are written in one transaction (the outbox), then published; so a crash between the
two loses nothing: the outbox is flushed again later.

Personal data kept: the referral to re-offer (contact, message) while the referral is still
moving between associations; it is erased once an association accepts. The rest of a referral's
row (statuses, candidates and their reasons, scores, who was tried, whether it is urgent) is
about the routing, kept for the statistics; but it also tells whether the person said they are
in distress (the `urgent` flag, the distress points and reasons, APESA among the candidates).

So an erasure (`rebond_router.privacy.erase`) deletes the referral's row, its offers and its
unpublished outputs, and keeps only `router_erasures`: the reference's SHA-256
(`rebond_sql.erasure`) and when it was erased. Every input about a reference (a questionnaire,
an answer) reads that tombstone in the transaction of its effect, under the reference's lock
(`rebond_sql.erasure.lock_references`), so that nothing is routed or answered after an erasure,
whatever order the topics are read in. The tombstones live apart from `router_handled_events`,
whose keys are the event ids of associations' answers, chosen by the associations: an answer
whose id mimics an erasure marker can no longer stand for one.
"""

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect

from rebond_contracts.associations import AssociationId
from rebond_sql import Database, Transaction, Work
from rebond_sql.erasure import erased_among, lock_references, reference_digest


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

referrals = Table(
    "router_referrals",
    metadata,
    Column("reference", String(32), primary_key=True),
    Column("decision_id", String(36), nullable=False, unique=True),
    Column("correlation_id", String(200), nullable=False),
    Column("rule_set_version", String(100), nullable=False),
    Column("urgent", Boolean, nullable=False),
    #: offered, reminded, accepted, unrouted, not_shared (a decision without referral)
    Column("status", String(20), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("holder", String(40)),
    Column("referral_id", String(36)),
    Column("deadline", UTCDateTime, index=True),
    Column("remind_at", UTCDateTime),
    Column("reminded", Boolean, nullable=False, default=False),
    #: Candidates still to try, holder first: [{association, score, reasons}]
    Column("candidates", JSON, nullable=False),
    Column("scores", JSON, nullable=False),
    #: Associations tried so far: [{association_id, referral_id, outcome, reason}]
    Column("tried", JSON, nullable=False),
    #: The referral to re-offer (ReferralV1 JSON); erased once accepted.
    Column("template", Text),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

offers = Table(
    "router_offers",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("reference", String(32), nullable=False),
    Column("association_id", String(40), nullable=False),
    Column("offered_at", UTCDateTime, nullable=False, index=True),
)

#: How many offers each association got each week (Monday 00:00 UTC): the weekly capacity is
#: read here, one row per association, instead of counting the week's offers at every batch.
week_offers = Table(
    "router_week_offers",
    metadata,
    Column("association_id", String(40), primary_key=True),
    Column("week_start", UTCDateTime, primary_key=True),
    Column("offers", Integer, nullable=False),
)


def week_start(now: datetime) -> datetime:
    """Monday 00:00 (UTC) of `now`'s week: weekly capacity counts offers since then."""
    day = now.astimezone(now.tzinfo).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _upsert(connection: Any, table: Table) -> Any:
    """INSERT ... ON CONFLICT in the connection's dialect (SQLite and PostgreSQL say it alike)."""
    return (pg_insert if connection.dialect.name == "postgresql" else sqlite_insert)(table)


outbox = Table(
    "router_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("reference", String(32), nullable=False, index=True),
    Column("topic", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("value", Text, nullable=False),
    Column("headers", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

handled = Table(
    "router_handled_events",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("handled_at", UTCDateTime, nullable=False),
)

#: One row per erased reference, nothing else about it (see the module's docstring).
erasures = Table(
    "router_erasures",
    metadata,
    Column("reference_sha256", String(64), primary_key=True),
    Column("erased_at", UTCDateTime, nullable=False),
)

#: How an older router remembered an erasure: a row of `router_handled_events`.
OLD_ERASURE_MARKER = "erasure:"

OPEN = ("offered", "reminded")
T = TypeVar("T")


class ConcurrentChange(RuntimeError):
    """Another instance changed the referral first; the caller retries (transient)."""


@dataclass(frozen=True)
class OutboxRecord:
    id: int
    reference: str
    topic: str
    key: str
    value: bytes
    headers: dict[str, str]


class Tx:
    """One transaction on the store.

    New referrals, offers and outbox rows are buffered and written together, one multi-row
    INSERT per table in the order they were added (a batch of decisions costs a few statements,
    not a few per decision); any read or update writes the buffer first, in the same step, so
    the transaction always sees its own writes, and `Store.transaction` writes it before
    committing. Each method is one step on the database (`rebond_sql`)."""

    def __init__(self, transaction: Transaction) -> None:
        self.transaction = transaction
        self._inserts: dict[Table, list[dict[str, Any]]] = {}
        self._week_offers: dict[tuple[str, datetime], int] = {}
        self._on_commit: list[Callable[[], None]] = []

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the transaction has committed (never if it rolls back)."""
        self._on_commit.append(callback)

    async def run(self, work: Work[T]) -> T:
        """`work` on the transaction's connection, after the buffered inserts."""
        inserts, self._inserts = self._inserts, {}
        counts, self._week_offers = self._week_offers, {}
        if not inserts and not counts:
            return await self.transaction.run(work)

        def write_then(connection: Connection) -> T:
            _write(connection, inserts, counts)
            return work(connection)

        return await self.transaction.run(write_then)

    async def write(self) -> None:
        """Write the buffered inserts (and the weekly offer counts they add to) now."""
        if self._inserts or self._week_offers:
            await self.run(lambda _connection: None)

    async def referral(self, reference: str, *, lock: bool = False) -> dict[str, Any] | None:
        """The referral row; `lock` takes a row lock on PostgreSQL (SKIP LOCKED: None if held)."""
        query = select(referrals).where(referrals.c.reference == reference)
        if lock:
            query = query.with_for_update(skip_locked=True)

        def read(connection: Connection) -> dict[str, Any] | None:
            row = connection.execute(query).mappings().first()
            return dict(row) if row is not None else None

        return await self.run(read)

    async def batch_start(
        self, references: Sequence[str], week: datetime
    ) -> tuple[set[str], set[str], dict[AssociationId, int]]:
        """What a batch of questionnaires reads before deciding, in one step, once it holds
        their references' locks: those of `references` decided before (a referral row), those
        erased, and `offered_in_week(week)`."""

        def read(connection: Connection) -> tuple[set[str], set[str], dict[AssociationId, int]]:
            lock_references(connection, references, erasing=False)
            return (
                _known(connection, references),
                erased_among(connection, erasures, references),
                _week_loads(connection, week),
            )

        return await self.run(read)

    async def erased(self, reference: str) -> bool:
        """Whether `reference` was erased, read once this transaction holds its lock."""

        def read(connection: Connection) -> bool:
            lock_references(connection, [reference], erasing=False)
            return bool(erased_among(connection, erasures, [reference]))

        return await self.run(read)

    async def insert_referral(self, **values: Any) -> None:
        self._inserts.setdefault(referrals, []).append({"version": 1, **values})

    async def update_referral(self, row: Mapping[str, Any], **values: Any) -> None:
        """Conditional update: only if nobody changed the row since it was read (the claim)."""
        statement = (
            update(referrals)
            .where(
                referrals.c.reference == row["reference"],
                referrals.c.version == row["version"],
            )
            .values(version=row["version"] + 1, **values)
        )
        changed = await self.run(lambda connection: connection.execute(statement).rowcount)
        if changed != 1:
            raise ConcurrentChange(row["reference"])

    async def record_offer(
        self, referral_id: str, reference: str, association: str, at: datetime
    ) -> None:
        self._inserts.setdefault(offers, []).append(
            {
                "referral_id": referral_id,
                "reference": reference,
                "association_id": association,
                "offered_at": at,
            }
        )
        key = (association, week_start(at))
        self._week_offers[key] = self._week_offers.get(key, 0) + 1

    async def offered_in_week(self, week: datetime) -> dict[AssociationId, int]:
        """Offers made to each association in the week starting at `week` (`week_start`)."""
        return await self.run(lambda connection: _week_loads(connection, week))

    async def already_handled(self, event_id: str) -> bool:
        return bool(await self.handled_among([event_id]))

    async def handled_among(self, event_ids: Sequence[str]) -> set[str]:
        """Those of `event_ids` already handled."""
        return await self.run(lambda connection: _handled(connection, event_ids))

    async def mark_handled(self, event_id: str, at: datetime) -> None:
        statement = insert(handled).values(event_id=event_id, handled_at=at)
        await self.run(lambda connection: connection.execute(statement))

    async def add_output(
        self, reference: str, topic: str, key: str, value: bytes, headers: Mapping[str, str],
        at: datetime,
    ) -> None:  # fmt: skip
        self._inserts.setdefault(outbox, []).append(
            {
                "reference": reference,
                "topic": topic,
                "key": key,
                "value": value.decode(),
                "headers": json.dumps(dict(headers)),
                "created_at": at,
            }
        )

    async def due(self, now: datetime, limit: int) -> list[str]:
        """References whose holder's deadline has passed (rows locked elsewhere are skipped)."""
        query = (
            select(referrals.c.reference)
            .where(referrals.c.status.in_(OPEN), referrals.c.deadline <= now)
            .order_by(referrals.c.deadline)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self.run(lambda connection: list(connection.execute(query).scalars()))

    async def reminders_due(self, now: datetime, limit: int) -> list[str]:
        query = (
            select(referrals.c.reference)
            .where(
                referrals.c.status == "offered",
                referrals.c.reminded.is_(False),
                referrals.c.remind_at <= now,
                referrals.c.deadline > now,
            )
            .order_by(referrals.c.remind_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self.run(lambda connection: list(connection.execute(query).scalars()))


def _known(connection: Connection, references: Sequence[str]) -> set[str]:
    query = select(referrals.c.reference).where(referrals.c.reference.in_(list(references)))
    return set(connection.execute(query).scalars())


def forget(connection: Connection, reference: str) -> None:
    """Delete the referral of `reference`, its offers and its unpublished outputs."""
    connection.execute(delete(referrals).where(referrals.c.reference == reference))
    connection.execute(delete(offers).where(offers.c.reference == reference))
    connection.execute(delete(outbox).where(outbox.c.reference == reference))


def _tombstones_from_old_markers(connection: Connection) -> None:
    """Turn the erasure markers an older router kept among the handled events into tombstones
    (and forget what the erasure then kept), once. A marker whose referral is still live and
    not erased came from an association's answer with a forged id (the flaw the tombstones
    close): it stays where it is, an answer's id like any other."""
    markers = connection.execute(
        select(handled.c.event_id, handled.c.handled_at).where(
            handled.c.event_id.startswith(OLD_ERASURE_MARKER, autoescape=True)
        )
    ).all()
    for marker, at in markers:
        reference = marker.removeprefix(OLD_ERASURE_MARKER)
        status = connection.execute(
            select(referrals.c.status).where(referrals.c.reference == reference)
        ).scalar()
        if status not in (None, "erased"):
            continue
        connection.execute(
            _upsert(connection, erasures)
            .values(reference_sha256=reference_digest(reference), erased_at=at)
            .on_conflict_do_nothing()
        )
        forget(connection, reference)
        connection.execute(delete(handled).where(handled.c.event_id == marker))


def _handled(connection: Connection, event_ids: Sequence[str]) -> set[str]:
    query = select(handled.c.event_id).where(handled.c.event_id.in_(list(event_ids)))
    return set(connection.execute(query).scalars())


def _week_loads(connection: Connection, week: datetime) -> dict[AssociationId, int]:
    query = select(week_offers.c.association_id, week_offers.c.offers).where(
        week_offers.c.week_start == week
    )
    return {AssociationId(a): int(count) for a, count in connection.execute(query).all()}


def _write(
    connection: Connection,
    inserts: Mapping[Table, list[dict[str, Any]]],
    counts: Mapping[tuple[str, datetime], int],
) -> None:
    for table, rows in inserts.items():
        connection.execute(insert(table), rows)
    if counts:
        upsert = _upsert(connection, week_offers)
        connection.execute(
            upsert.on_conflict_do_update(
                index_elements=[week_offers.c.association_id, week_offers.c.week_start],
                set_={"offers": week_offers.c.offers + upsert.excluded.offers},
            ),
            [
                {"association_id": association, "week_start": week, "offers": n}
                for (association, week), n in counts.items()
            ],
        )


class Store:
    """The router's tables on one `rebond_sql.Database`; `create_schema` starts it."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @classmethod
    def from_url(cls, url: str) -> "Store":
        return cls(Database(url, name="router"))

    async def create_schema(self, *, now: datetime | None = None) -> None:
        """Start the database and make the tables; and, for a store that had offers before the
        weekly counts existed, this week's counts from its offers (once: a week already
        counted is left as it is); and, for a store that marked erasures among its handled
        events, their tombstones (`_tombstones_from_old_markers`)."""
        week = week_start(now or datetime.now(UTC))
        this_week = (
            select(offers.c.association_id, literal(week, UTCDateTime), func.count())
            .where(offers.c.offered_at >= week)
            .group_by(offers.c.association_id)
        )

        def create(connection: Connection) -> None:
            metadata.create_all(connection, checkfirst=True)
            connection.execute(
                _upsert(connection, week_offers)
                .from_select(["association_id", "week_start", "offers"], this_week)
                .on_conflict_do_nothing()
            )
            _tombstones_from_old_markers(connection)

        await self.database.start()
        await self.database.run(create)

    async def close(self) -> None:
        await self.database.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.database.transaction() as transaction:
            tx = Tx(transaction)
            yield tx
            await tx.write()
        for callback in tx._on_commit:
            callback()

    async def pending_outputs(
        self, references: Sequence[str] | None = None, created_before: datetime | None = None
    ) -> list[OutboxRecord]:
        """Outputs not yet acknowledged by Kafka, oldest first (of `references` only, if given)."""
        query = select(outbox).order_by(outbox.c.id)
        if references is not None:
            query = query.where(outbox.c.reference.in_(list(references)))
        if created_before is not None:
            query = query.where(outbox.c.created_at <= created_before)
        rows = await self.database.run(
            lambda connection: connection.execute(query).mappings().all()
        )
        return [
            OutboxRecord(
                id=row["id"],
                reference=row["reference"],
                topic=row["topic"],
                key=row["key"],
                value=row["value"].encode(),
                headers=json.loads(row["headers"]),
            )
            for row in rows
        ]

    async def forget_outputs(self, ids: Sequence[int]) -> None:
        """Published and acknowledged: drop them (they may hold personal data)."""
        if ids:
            statement = delete(outbox).where(outbox.c.id.in_(list(ids)))
            await self.database.run(lambda connection: connection.execute(statement))
