"""The delivery log: the notifier's own store (SQLAlchemy 2 through `rebond_sql`; SQLite or
PostgreSQL).

A row per side effect, unique on (referral_id, channel, kind): a redelivered decision inserts
nothing new, so nothing is sent twice. For the e-mails about the Conférences du rebond, which
are about no referral, the `referral_id` column holds the key of the event instead (the
CloudEvent id of a registration event, the invitation id), `association_id` is empty and
`reference` is the submission reference of an invitation (empty for a registration): the same
uniqueness then covers a redelivered registration or invitation, with no schema change. Rows
are written before the Kafka offset is committed and drained by the dispatcher; a worker claims
a row with a lease so that a crashed worker's row is taken over later. The rendered message
(which holds personal data) is erased from the row once the delivery is final.

`notifier_referrals` lists the referrals handed to an association's topic (noted before they are
published): whom a withdrawal must reach. `notifier_answers` keeps the answers given through
the e-mail links. Rows name the association, so, for APESA, they tell that the person said they
are in distress; an erasure (`erase`) therefore deletes every row of the reference, in all three
tables, and keeps only `notifier_tombstones`: the reference's SHA-256 (`rebond_sql.erasure`) and
when it was erased. Every input about a reference (a decision, a status, an invitation, an
answer through a link) reads that tombstone in the transaction of its effect, under the
reference's lock (`rebond_sql.erasure.lock_references`); `publish_referrals` says why no order
of a referral's publication and its erasure loses the withdrawal.

Each method is one transaction, run as one plain function of a `Connection` by
`rebond_sql.Database.run` (on SQLite: one hop to the database's own thread, whatever the
function executes); `record_answer`, `publish_referrals` and `erase` keep a transaction open
while they publish (on SQLite the store's other work waits for it meanwhile).
"""

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    insert,
    inspect,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from rebond_sql import Database
from rebond_sql.erasure import erased_among, lock_references, reference_digest

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
DEAD_LETTERED = "dead_lettered"
#: Namespace of `Delivery.delivery_id`; changing it would make old deliveries look new.
DELIVERY_NAMESPACE = uuid.UUID("0b6f3f5e-2d0c-4f43-8a0e-5b7f0c2e9d41")
FINAL = (SENT, FAILED, DEAD_LETTERED)

metadata = MetaData()

deliveries = Table(
    "notifier_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("referral_id", String(36), nullable=False),
    Column("channel", String(32), nullable=False),
    #: offer, reminder, expiry, confirmation; conf_* and invitation for the conference e-mails.
    Column("kind", String(16), nullable=False),
    Column("reference", String(32), nullable=False),
    Column("association_id", String(32), nullable=False),
    Column("correlation_id", String(64), nullable=False),
    Column("status", String(16), nullable=False, default=PENDING),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("locked_until", Float, nullable=True),
    Column("payload", Text, nullable=True),
    Column("last_error", String(200), nullable=True),
    Column("outcome_published", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("referral_id", "channel", "kind", name="uq_delivery_referral_channel_kind"),
    # Every dispatch round asks for the due deliveries and the outcomes not yet published: few
    # rows among all those ever sent, found through these instead of a scan of the table.
    Index("ix_notifier_deliveries_due", "status", "next_attempt_at"),
    Index("ix_notifier_deliveries_unpublished", "outcome_published", "status"),
)

answers = Table(
    "notifier_answers",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("association_id", String(32), nullable=False),
    Column("answer", String(16), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("answered_at", Float, nullable=False),
)


#: Where each referral (one offer to one association) stands, as `referrals.status` told: the
#: answer page reads it to say that a case has moved on instead of confirming an answer the router
#: would set aside. No personal data: a random referral id, a status, its rank and when.
referral_states = Table(
    "notifier_referral_states",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("at", Float, nullable=False),
)

#: How far along its life each status puts a referral. A status never replaces one of higher
#: rank: a redelivered `offered`, read again after the `expired` that followed it, changes
#: nothing. The router writes a referral's statuses in order on one partition (keyed by the
#: reference), so equal ranks arrive in the order they happened.
STATUS_RANKS = {
    "offered": 0,
    "reminded": 1,
    "accepted": 2,
    "declined": 2,
    "expired": 2,
    "reoriented": 3,
    "unrouted": 3,
    "closed": 3,
}

#: Referrals handed (or being handed) to `referrals.<association_id>`: whom to withdraw them from.
offered = Table(
    "notifier_referrals",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("reference", String(32), nullable=False, index=True),
    Column("association_id", String(32), nullable=False),
    Column("noted_at", Float, nullable=False),
    #: Set once Kafka acknowledged it; until then it may or may not be on the topic.
    Column("published_at", Float, nullable=True),
)

#: One row per erased reference, nothing else about it (see the module's docstring).
tombstones = Table(
    "notifier_tombstones",
    metadata,
    Column("reference_sha256", String(64), primary_key=True),
    Column("erased_at", Float, nullable=False),
)

#: How an older notifier remembered erasures (the reference itself); emptied into
#: `notifier_tombstones` by `create_schema`, never created any more.
_older = MetaData()
old_erasures = Table(
    "notifier_erasures",
    _older,
    Column("reference", String(32), primary_key=True),
    Column("erased_at", Float, nullable=False),
)


@dataclass(frozen=True)
class Holder:
    """An association that was handed a referral (its topic gets the withdrawal notice)."""

    association_id: str
    referral_id: str


@dataclass(frozen=True)
class Offer:
    """A referral to publish to its association's topic, and the deliveries it calls for once
    Kafka has it (the association's e-mail and webhook, the person's confirmation)."""

    referral_id: str
    reference: str
    association_id: str
    deliveries: Sequence["NewDelivery"]


@dataclass(frozen=True)
class Offered:
    """What `publish_referrals` did: the offers published and the deliveries recorded, and the
    offers left out because their person asked for erasure."""

    published: list[Offer]
    erased: list[Offer]
    deliveries: int


@dataclass(frozen=True)
class ReferralState:
    """A referral's latest status (a `ReferralStatus` value) and when it took it (unix seconds)."""

    referral_id: str
    status: str
    at: float


@dataclass(frozen=True)
class NewDelivery:
    referral_id: str
    channel: str
    kind: str
    reference: str
    association_id: str
    correlation_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    id: int
    referral_id: str
    channel: str
    kind: str
    reference: str
    association_id: str
    correlation_id: str
    status: str
    attempts: int
    payload: dict[str, Any] | None
    last_error: str | None

    @property
    def delivery_id(self) -> str:
        """Stable across attempts, restarts and replicas: the receiver's deduplication key. A
        process killed between a webhook's answer (or an SMTP "250") and its record sends the
        same delivery again on restart, with the same id (`webhook-id`, `Message-ID`)."""
        key = f"{self.referral_id}:{self.channel}:{self.kind}"
        return str(uuid.uuid5(DELIVERY_NAMESPACE, key))

    @property
    def lane(self) -> tuple[str, str]:
        """Deliveries of one lane run one after another; lanes run concurrently."""
        return (self.channel, self.association_id)


@dataclass(frozen=True)
class Lease:
    """Deliveries one worker claimed together, held until `until`. Another claim after that
    writes another `until`, so `until` also tells whether the rows are still this claim's."""

    ids: tuple[int, ...]
    until: float

    def after(self, delivery_id: int) -> "Lease":
        """The same lease over the deliveries that come after `delivery_id`."""
        return Lease(tuple(i for i in self.ids if i > delivery_id), self.until)


class AlreadyAnswered(Exception):
    """The referral was already answered through a link."""


class Withdrawn(Exception):
    """The person asked for erasure: their referral can no longer be answered."""


def _row(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        referral_id=row.referral_id,
        channel=row.channel,
        kind=row.kind,
        reference=row.reference,
        association_id=row.association_id,
        correlation_id=row.correlation_id,
        status=row.status,
        attempts=row.attempts,
        payload=json.loads(row.payload) if row.payload else None,
        last_error=row.last_error,
    )


# The two statements run once per delivery are built once: building one (and its cache key)
# costs about a quarter of a SQLite transaction.
_FINISH = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("delivery_id"))
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        locked_until=None,
        payload=None,
        last_error=bindparam("error"),
        outcome_published=False,
    )
)
_HELD = select(deliveries.c.id).where(
    deliveries.c.id.in_(bindparam("ids", expanding=True)),
    deliveries.c.status == PENDING,
    deliveries.c.locked_until == bindparam("until"),
)


def _held(connection: Connection, lease: Lease) -> list[int]:
    if not lease.ids:
        return []
    rows = connection.execute(_HELD, {"ids": list(lease.ids), "until": lease.until})
    return sorted(rows.scalars())


def _checked(connection: Connection, references: Collection[str]) -> set[str]:
    """Take the locks of `references` (shared: an effect), then those of them erased."""
    references = {reference for reference in references if reference}
    lock_references(connection, references, erasing=False)
    return erased_among(connection, tombstones, references)


def _rank(status: str) -> int:
    return STATUS_RANKS.get(status, 0)


def _insert_deliveries(connection: Connection, items: Sequence[NewDelivery], now: float) -> int:
    """One multi-row INSERT of `items`; those already known are left alone. How many are new."""
    if not items:
        return 0
    rows = [
        {
            "referral_id": item.referral_id,
            "channel": item.channel,
            "kind": item.kind,
            "reference": item.reference,
            "association_id": item.association_id,
            "correlation_id": item.correlation_id,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "payload": json.dumps(item.payload),
            "outcome_published": False,
            "created_at": now,
        }
        for item in items
    ]
    statement = (
        _insert(connection, deliveries)
        .on_conflict_do_nothing(index_elements=["referral_id", "channel", "kind"])
        .returning(deliveries.c.id)
    )
    return len(connection.execute(statement, rows).fetchall())


def _insert(connection: Connection, table: Table) -> Any:
    """INSERT … ON CONFLICT in the connection's dialect."""
    return (pg_insert if connection.dialect.name == "postgresql" else sqlite_insert)(table)


def _note_offers(offers: Sequence[Offer], now: float, connection: Connection) -> None:
    """Note the offers of references not erased, before they are published (`publish_referrals`)."""
    erased = _checked(connection, {offer.reference for offer in offers})
    rows = [
        {"referral_id": o.referral_id, "reference": o.reference,
         "association_id": o.association_id, "noted_at": now}
        for o in offers
        if o.reference not in erased
    ]  # fmt: skip
    if rows:
        connection.execute(_insert(connection, offered).on_conflict_do_nothing(), rows)


def _published(offers: Sequence[Offer], now: float, connection: Connection) -> int:
    """The offers are on Kafka: mark them so and record the deliveries they call for."""
    connection.execute(
        update(offered)
        .where(offered.c.referral_id.in_([offer.referral_id for offer in offers]))
        .values(published_at=now)
    )
    return _insert_deliveries(connection, [d for offer in offers for d in offer.deliveries], now)


def _forget(connection: Connection, references: Collection[str]) -> list[Holder]:
    """Delete every row of `references` (deliveries, offers, answers to their referrals);
    returns the associations each referral was, or may have been, handed to."""
    references = list(references)
    holders = {
        Holder(a, r)
        for a, r in connection.execute(
            select(offered.c.association_id, offered.c.referral_id).where(
                offered.c.reference.in_(references)
            )
        )
    } | {
        Holder(a, r)
        for a, r in connection.execute(
            select(deliveries.c.association_id, deliveries.c.referral_id).where(
                deliveries.c.reference.in_(references), deliveries.c.association_id != ""
            )
        )
    }
    referral_ids = [holder.referral_id for holder in holders]
    connection.execute(delete(answers).where(answers.c.referral_id.in_(referral_ids)))
    connection.execute(delete(deliveries).where(deliveries.c.reference.in_(references)))
    connection.execute(delete(offered).where(offered.c.reference.in_(references)))
    return sorted(holders, key=lambda h: (h.association_id, h.referral_id))


def _tombstones_from_older_erasures(connection: Connection) -> None:
    """An older notifier kept each erased reference itself, and its rows with the message
    erased: make each a tombstone and forget its rows (their withdrawals were sent then)."""
    if not inspect(connection).has_table(old_erasures.name):
        return
    for reference, at in connection.execute(select(old_erasures)).all():
        connection.execute(
            _insert(connection, tombstones)
            .values(reference_sha256=reference_digest(reference), erased_at=at)
            .on_conflict_do_nothing()
        )
        _forget(connection, [reference])
        connection.execute(delete(old_erasures).where(old_erasures.c.reference == reference))


class DeliveryStore:
    """The notifier's tables on one `rebond_sql.Database`; `create_schema` starts it."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @classmethod
    def from_url(cls, url: str) -> "DeliveryStore":
        return cls(Database(url, name="notifier"))

    async def create_schema(self) -> None:
        """Start the database and make the tables, and the indexes added since (`create_all`
        leaves an existing table as it is); an older notifier's erasures become tombstones."""

        def create(connection: Connection) -> None:
            metadata.create_all(connection)
            for index in deliveries.indexes:
                index.create(connection, checkfirst=True)
            _tombstones_from_older_erasures(connection)

        await self.database.start()
        await self.database.run(create)

    async def close(self) -> None:
        await self.database.close()

    async def enqueue(
        self,
        items: list[NewDelivery],
        *,
        states: Sequence[ReferralState] = (),
        now: float | None = None,
    ) -> int:
        """Record pending deliveries; those already known, and those about an erased
        reference, are left alone. Returns how many are new. `states` (the referrals' statuses
        read with them) are recorded in the same transaction, each only where it does not go
        back on a later status (`STATUS_RANKS`)."""
        now = time.time() if now is None else now
        latest: dict[str, ReferralState] = {}
        for state in states:  # one row per referral: an upsert may not touch a row twice
            known = latest.get(state.referral_id)
            if known is None or _rank(state.status) >= _rank(known.status):
                latest[state.referral_id] = state
        state_rows = [
            {"referral_id": s.referral_id, "status": s.status, "rank": _rank(s.status), "at": s.at}
            for s in latest.values()
        ]
        if not items and not state_rows:
            return 0

        def insert_new(connection: Connection) -> int:
            if state_rows:
                upsert = _insert(connection, referral_states)
                connection.execute(
                    upsert.on_conflict_do_update(
                        index_elements=["referral_id"],
                        set_={"status": upsert.excluded.status, "rank": upsert.excluded.rank,
                              "at": upsert.excluded.at},
                        where=referral_states.c.rank <= upsert.excluded.rank,
                    ),
                    state_rows,
                )  # fmt: skip
            erased = _checked(connection, {item.reference for item in items})
            kept = [item for item in items if item.reference not in erased]
            return _insert_deliveries(connection, kept, now)

        return await self.database.run(insert_new)

    async def referral_state(self, referral_id: str) -> ReferralState | None:
        """The referral's latest status, or None when none was read yet."""
        query = select(referral_states).where(referral_states.c.referral_id == referral_id)

        def read(connection: Connection) -> ReferralState | None:
            row = connection.execute(query).first()
            return None if row is None else ReferralState(row.referral_id, row.status, row.at)

        return await self.database.run(read)

    async def publish_referrals(
        self,
        offers: Sequence[Offer],
        publish: Callable[[list[Offer]], Awaitable[None]],
        *,
        now: float | None = None,
    ) -> Offered:
        """Publish the offers of references not erased (`publish` returns once Kafka has
        acknowledged them all, or raises), then record the deliveries they call for.

        Two transactions, each under the references' (shared) locks. The first notes the
        offers (`notifier_referrals`) and commits. The second reads the tombstones again,
        publishes, records the deliveries and commits: it holds the locks while Kafka
        acknowledges. An erasure takes the reference's lock exclusively, deletes every row of it
        and withdraws every offer it finds noted, published or not; so whatever the order:

        - erased before the first: nothing is noted, nothing published;
        - erased between the two: the erasure withdraws an offer never published (a notice
          the association can ignore), and the second, seeing the tombstone, publishes nothing;
        - erased while the second runs: the erasure waits for its commit, that is, for Kafka's
          acknowledgement of the referral; it then finds the offer and publishes the withdrawal
          after the referral, on the same partition (both keyed by the reference): the
          association reads the offer, then the withdrawal;
        - the second fails or the process dies within it (the referral may or may not have
          reached Kafka): nothing is published as done, no delivery recorded, but the offer
          stays noted, so a later erasure still withdraws it; the decision is read again.

        No interleaving publishes a referral after its erasure, or leaves one published
        without a withdrawal following it."""
        now = time.time() if now is None else now
        if not offers:
            return Offered([], [], 0)
        references = {offer.reference for offer in offers}
        await self.database.run(partial(_note_offers, offers, now))
        added, kept = 0, []
        async with self.database.transaction() as transaction:
            erased = await transaction.run(lambda connection: _checked(connection, references))
            kept = [offer for offer in offers if offer.reference not in erased]
            if kept:
                await publish(kept)
                added = await transaction.run(partial(_published, kept, now))
        left_out = [offer for offer in offers if offer.reference in erased]
        return Offered(kept, left_out, added)

    async def due(
        self,
        *,
        now: float | None = None,
        limit: int = 500,
        except_lanes: Collection[tuple[str, str]] = (),
    ) -> list[Delivery]:
        """Pending deliveries whose time has come and that no worker holds, leaving out the
        lanes (channel, association) named in `except_lanes`: those a worker of this process is
        already draining; their rows would be read and decoded only to be dropped."""
        now = time.time() if now is None else now
        query = (
            select(deliveries)
            .where(
                deliveries.c.status == PENDING,
                deliveries.c.next_attempt_at <= now,
                or_(deliveries.c.locked_until.is_(None), deliveries.c.locked_until < now),
            )
            .order_by(deliveries.c.id)
            .limit(limit)
        )
        if except_lanes:
            lane = tuple_(deliveries.c.channel, deliveries.c.association_id)
            query = query.where(lane.not_in(list(except_lanes)))
        return await self.database.run(
            lambda connection: [_row(row) for row in connection.execute(query)]
        )

    async def next_due_at(self) -> float | None:
        query = select(deliveries.c.next_attempt_at).where(deliveries.c.status == PENDING)
        times = await self.database.run(
            lambda connection: [row[0] for row in connection.execute(query)]
        )
        return min(times) if times else None

    async def claim_many(
        self, delivery_ids: Sequence[int], lease_s: float, *, now: float | None = None
    ) -> Lease:
        """Take, in one statement, those of `delivery_ids` that are pending, due and held by no
        worker, for `lease_s` seconds; the lease lists those taken. The conditions are `claim`'s,
        plus being due: a row read a while ago may have been tried and put off by another
        replica meanwhile. On PostgreSQL a row another transaction claims at the same time is
        re-checked against these conditions once that one commits, so it is not taken twice."""
        now = time.time() if now is None else now
        until = now + lease_s
        if not delivery_ids:
            return Lease((), until)
        statement = (
            update(deliveries)
            .where(
                deliveries.c.id.in_(list(delivery_ids)),
                deliveries.c.status == PENDING,
                deliveries.c.next_attempt_at <= now,
                or_(deliveries.c.locked_until.is_(None), deliveries.c.locked_until < now),
            )
            .values(locked_until=until)
            .returning(deliveries.c.id)
        )
        taken = await self.database.run(
            lambda connection: connection.execute(statement).scalars().all()
        )
        return Lease(tuple(sorted(taken)), until)

    async def held(self, lease: Lease) -> list[int]:
        """Those of the lease's deliveries still pending and still held under it: an erasure
        (or the retention clean-up) may have stopped one since it was claimed."""
        return await self.database.run(lambda connection: _held(connection, lease))

    async def release(self, lease: Lease) -> None:
        """Hand back the lease's deliveries still held under it, to be claimed again at once."""
        if not lease.ids:
            return
        statement = (
            update(deliveries)
            .where(deliveries.c.id.in_(lease.ids), deliveries.c.locked_until == lease.until)
            .values(locked_until=None)
        )
        await self.database.run(lambda connection: connection.execute(statement))

    async def retry_later(
        self,
        delivery_id: int,
        attempts: int,
        at: float,
        error: str,
        *,
        then_check: Lease | None = None,
    ) -> list[int]:
        """Put the delivery off until `at`. With `then_check`, returns `held(then_check)` read
        in the same transaction (a worker checks its next deliveries at no extra transaction)."""
        statement = (
            update(deliveries)
            .where(deliveries.c.id == delivery_id)
            .values(attempts=attempts, next_attempt_at=at, locked_until=None, last_error=error)
        )

        def put_off(connection: Connection) -> list[int]:
            connection.execute(statement)
            return [] if then_check is None else _held(connection, then_check)

        return await self.database.run(put_off)

    async def finish(
        self,
        delivery_id: int,
        status: str,
        attempts: int,
        error: str | None = None,
        *,
        then_check: Lease | None = None,
    ) -> list[int]:
        """Final outcome; the rendered message is erased, the outcome awaits publication. With
        `then_check`, returns `held(then_check)` read in the same transaction."""
        assert status in FINAL
        row = {"delivery_id": delivery_id, "status": status, "attempts": attempts, "error": error}

        def record(connection: Connection) -> list[int]:
            connection.execute(_FINISH, row)
            return [] if then_check is None else _held(connection, then_check)

        return await self.database.run(record)

    async def unpublished_outcomes(self, limit: int = 500) -> list[Delivery]:
        query = (
            select(deliveries)
            .where(deliveries.c.status.in_(FINAL), deliveries.c.outcome_published.is_(False))
            .order_by(deliveries.c.id)
            .limit(limit)
        )
        return await self.database.run(
            lambda connection: [_row(row) for row in connection.execute(query)]
        )

    async def mark_published(self, delivery_ids: list[int]) -> None:
        """Their outcomes are on Kafka."""
        if not delivery_ids:
            return
        statement = (
            update(deliveries)
            .where(deliveries.c.id.in_(delivery_ids))
            .values(outcome_published=True)
        )
        await self.database.run(lambda connection: connection.execute(statement))

    async def find(self, referral_id: str) -> list[Delivery]:
        query = (
            select(deliveries)
            .where(deliveries.c.referral_id == referral_id)
            .order_by(deliveries.c.id)
        )
        return await self.database.run(
            lambda connection: [_row(row) for row in connection.execute(query)]
        )

    # --- answers given through the e-mail links ---------------------------------------------

    async def answered(self, referral_id: str) -> bool:
        query = select(answers.c.referral_id).where(answers.c.referral_id == referral_id)
        return await self.database.run(
            lambda connection: connection.execute(query).first() is not None
        )

    async def record_answer(
        self,
        referral_id: str,
        association_id: str,
        answer: str,
        reason: str | None,
        publish: Callable[[], Awaitable[None]],
        *,
        reference: str,
    ) -> None:
        """Mark the referral answered and publish, atomically: a failed publish keeps the link
        usable; a second answer raises `AlreadyAnswered`, one about an erased reference
        `Withdrawn` (read under the reference's lock: an erasure under way is waited for). The
        transaction stays open while `publish` runs (on SQLite the store's other work waits for
        it meanwhile)."""
        statement = insert(answers).values(
            referral_id=referral_id,
            association_id=association_id,
            answer=answer,
            reason=reason,
            answered_at=time.time(),
        )
        async with self.database.transaction() as transaction:
            if await transaction.run(lambda connection: _checked(connection, [reference])):
                raise Withdrawn(reference)
            try:
                await transaction.run(lambda connection: connection.execute(statement))
            except IntegrityError as error:
                raise AlreadyAnswered(referral_id) from error
            await publish()

    # --- erasure and anonymisation ----------------------------------------------------------

    async def erased_among(self, references: list[str]) -> set[str]:
        """Those of `references` whose person asked for erasure."""
        return await self.database.run(
            lambda connection: erased_among(connection, tombstones, references)
        )

    async def erase(
        self,
        reference: str,
        withdraw: Callable[[list[Holder]], Awaitable[None]],
        *,
        now: float | None = None,
    ) -> list[Holder]:
        """Keep the tombstone of `reference`, delete every row of it, and call `withdraw` with
        the associations its referrals were (or may have been) handed to; returns those (none
        when it was erased before: they were told then).

        One transaction holding the reference's lock exclusively, kept open while `withdraw`
        publishes (see `publish_referrals`): if it fails, the transaction is rolled back, and the
        erasure, read again, withdraws again (the notices' ids are derived from the referral, so
        a repeat is recognisable)."""
        now = time.time() if now is None else now

        def start(connection: Connection) -> list[Holder]:
            lock_references(connection, [reference], erasing=True)
            connection.execute(
                _insert(connection, tombstones)
                .values(reference_sha256=reference_digest(reference), erased_at=now)
                .on_conflict_do_nothing()
            )
            return _forget(connection, [reference])

        async with self.database.transaction() as transaction:
            holders = await transaction.run(start)
            await withdraw(holders)
        return holders

    async def anonymise(self, older_than_s: float, *, now: float | None = None) -> int:
        """Rows recorded more than `older_than_s` ago lose their message and error text; one
        still pending that long is given up (failed). Returns how many rows changed. Referral
        states unchanged that long are forgotten: every answer link they could serve has
        expired (a link lasts until its deadline, days away, never weeks)."""
        now = time.time() if now is None else now
        cutoff = now - older_than_s

        def anonymise(connection: Connection) -> int:
            connection.execute(
                update(deliveries)
                .where(deliveries.c.created_at < cutoff, deliveries.c.status == PENDING)
                .values(status=FAILED, locked_until=None, outcome_published=False)
            )
            result = connection.execute(
                update(deliveries)
                .where(
                    deliveries.c.created_at < cutoff,
                    or_(deliveries.c.payload.is_not(None), deliveries.c.last_error.is_not(None)),
                )
                .values(payload=None, last_error=None)
            )
            connection.execute(delete(referral_states).where(referral_states.c.at < cutoff))
            return int(result.rowcount or 0)

        return await self.database.run(anonymise)


__all__ = ["DEAD_LETTERED", "FAILED", "PENDING", "SENT", "DeliveryStore", "Lease", "NewDelivery"]
