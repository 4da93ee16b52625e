"""The delivery log: the notifier's own store (SQLAlchemy Core through `rebond_sql.Database`;
SQLite or PostgreSQL; its schema made by the Alembic migrations in `migrations/`).

A row per side effect, unique on (referral_id, channel, kind): a redelivered decision inserts
nothing new, so nothing is sent twice. For the e-mails about the Conférences du rebond, which
are about no referral, the `referral_id` column holds the key of the event instead (the
CloudEvent id of a registration event, the invitation id), `association_id` is empty and
`reference` is the submission reference of an invitation (empty for a registration): the same
uniqueness then covers a redelivered registration or invitation, with no schema change. Rows
are written before the Kafka offset is committed and drained by the dispatcher; a worker claims
a row with a lease so that a crashed worker's row is taken over later. The rendered message
(which holds personal data) is erased from the row once the delivery is final.

`notifier_outbox` (`rebond_sql.outbox`) holds what the notifier publishes (`messages`), each
written in the transaction of what it tells: a decision's referral with its offer noted and its
deliveries recorded (`offer`), a delivery's outcome with its final status (`finish`), an answer
given through a link with its record (`record_answer`), the withdrawal notices with the erasure
(`erase`). The relay (`app.py`) publishes them once committed, holding the references' locks
until Kafka acknowledged them; `offer` says why no order of a referral's publication and its
erasure loses the withdrawal.

`notifier_referrals` lists the referrals handed (or about to be handed) to an association's
topic: whom a withdrawal must reach. `notifier_answers` keeps the answers given through the
e-mail links. Rows name the association, so, for APESA, they tell that the person said they
are in distress; an erasure (`erase`) therefore deletes every row of the reference, the unsent
messages of the outbox included, and keeps only `notifier_tombstones`: the reference's SHA-256
(`rebond_sql.erasure`) and when it was erased. Every input about a reference (a decision, a
status, an invitation, an answer through a link) reads that tombstone in the transaction of its
effect, under the reference's lock (`rebond_sql.erasure.lock_references`).

Each method is one transaction, run as one plain function of a `Connection` by
`rebond_sql.Database.run` (on SQLite: one hop to the database's own thread, whatever the
function executes); none waits for Kafka. Every time is an aware UTC datetime
(`rebond_sql.types.UTCDateTime`), from the store's clock unless the caller gives it.
"""

import json
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from rebond_contracts.payloads import DeliveryChannel, ReferralStatus
from rebond_notifier import messages
from rebond_sql import Database, Work
from rebond_sql.erasure import erased_among, lock_references, reference_digest, tombstone_table
from rebond_sql.migrations import upgrade
from rebond_sql.outbox import Message, Outbox, Relay, Send, outbox_table
from rebond_sql.types import Clock, UTCDateTime, utc_now

#: The Alembic migrations that make and change these tables.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"


FINAL = frozenset({DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.DEAD_LETTERED})
#: Namespace of `Delivery.delivery_id`; changing it would make old deliveries look new.
DELIVERY_NAMESPACE = uuid.UUID("0b6f3f5e-2d0c-4f43-8a0e-5b7f0c2e9d41")

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
    Column("status", String(16), nullable=False, default=DeliveryStatus.PENDING.value),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("payload", Text, nullable=True),
    Column("last_error", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("referral_id", "channel", "kind", name="uq_delivery_referral_channel_kind"),
    # Every dispatch round asks for the due deliveries: few rows among all those ever sent,
    # found through this instead of a scan of the table.
    Index("ix_notifier_deliveries_due", "status", "next_attempt_at"),
    # An id is never given twice (SQLite would give a deleted newest row's id again): a worker
    # recording the outcome of a delivery an erasure deleted meanwhile must not record it on
    # another delivery that took its id. SQLite's reflection does not see it: a migration that
    # copies this table (`batch_alter_table`) passes `table_kwargs={"sqlite_autoincrement": True}`.
    sqlite_autoincrement=True,
)

answers = Table(
    "notifier_answers",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("association_id", String(32), nullable=False),
    Column("answer", String(16), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("answered_at", UTCDateTime, nullable=False),
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
    Column("at", UTCDateTime, nullable=False),
)

#: How far along its life each status puts a referral. A status never replaces one of higher
#: rank: a redelivered `offered`, read again after the `expired` that followed it, changes
#: nothing. The router writes a referral's statuses in order on one partition (keyed by the
#: reference), so equal ranks arrive in the order they happened.
STATUS_RANKS = {
    ReferralStatus.OFFERED: 0,
    ReferralStatus.REMINDED: 1,
    ReferralStatus.ACCEPTED: 2,
    ReferralStatus.DECLINED: 2,
    ReferralStatus.EXPIRED: 2,
    ReferralStatus.REORIENTED: 3,
    ReferralStatus.UNROUTED: 3,
    ReferralStatus.CLOSED: 3,
}

#: Referrals handed (or about to be handed) to `referrals.<association_id>`: whom to withdraw
#: them from.
offered = Table(
    "notifier_referrals",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("reference", String(32), nullable=False, index=True),
    Column("association_id", String(32), nullable=False),
    Column("noted_at", UTCDateTime, nullable=False),
    #: When its referral was written to the outbox (before the outbox: when it was published);
    #: NULL for a decision an older notifier could not publish: reading it again writes it.
    Column("queued_at", UTCDateTime, nullable=True),
    #: The antenna the referral was for (`ReferralV1.antenna` as JSON), NULL for the
    #: association itself: its reminder, expiry and withdrawal go where its offer went.
    Column("antenna", Text, nullable=True),
)

#: The person's own address, first name and language, for the e-mails about their request's
#: steps: kept only when their decision's referral carries an e-mail address (a referral exists
#: only with their consent to be contacted through an association), only until their erasure
#: deletes it (`_forget`) or `forget_people` drops it at the end of its retention.
people = Table(
    "notifier_people",
    metadata,
    Column("reference", String(32), primary_key=True),
    Column("first_name", String(60), nullable=False),
    Column("email", String(320), nullable=False),
    Column("locale", String(8), nullable=False),
    Column("noted_at", UTCDateTime, nullable=False),
    #: Their consent to anonymous statistics, told with their follow-up answer (0005).
    Column("statistics", Boolean, nullable=False, server_default=false()),
)

#: The person's answer to the 30-day follow-up, once per referral. No personal data: a random
#: referral id, yes or no, and when.
followups = Table(
    "notifier_followups",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("contacted", Boolean, nullable=False),
    Column("answered_at", UTCDateTime, nullable=False),
)

#: One row per erased reference, nothing else about it (see the module's docstring).
tombstones = tombstone_table(metadata, "notifier_tombstones")

#: What the notifier publishes, until Kafka acknowledged it (see the module's docstring).
outbox = Outbox(outbox_table(metadata, "notifier_outbox"))


def migrate(database_url: str) -> None:
    """Bring the delivery log at `database_url` to the latest migration (blocking)."""
    upgrade(database_url, MIGRATIONS)


@dataclass(frozen=True)
class Holder:
    """An association that was handed a referral (its topic gets the withdrawal notice), and
    the antenna the referral was for (`ReferralV1.antenna` as JSON; None: the association)."""

    association_id: str
    referral_id: str
    antenna: str | None = None


@dataclass(frozen=True)
class Person:
    """Whom the e-mails about a request's steps go to (`people`)."""

    reference: str
    first_name: str
    email: str
    locale: str
    #: They consented to anonymous statistics (the first decision's `statistics_consent`).
    statistics: bool = False


@dataclass(frozen=True)
class Told:
    """A step e-mail the person was sent, or is about to be, about their request: its kind
    and the association it was about ("" when none)."""

    kind: str
    association_id: str


@dataclass(frozen=True)
class Offer:
    """A referral for its association's topic (`message`), the deliveries it calls for (the
    association's e-mail and webhook, the person's confirmation), and the person to write to
    at the request's next steps, when they gave an e-mail address."""

    referral_id: str
    reference: str
    association_id: str
    deliveries: Sequence["NewDelivery"]
    message: Message
    person: Person | None = None
    #: The antenna the referral is for, as JSON (`ReferralV1.antenna`); None: the association.
    antenna: str | None = None


@dataclass(frozen=True)
class Offered:
    """What `offer` did: the offers kept (to be published) and the deliveries recorded, and
    the offers left out because their person asked for erasure."""

    kept: list[Offer]
    erased: list[Offer]
    deliveries: int


@dataclass(frozen=True)
class ReferralState:
    """A referral's latest status and when it took it."""

    referral_id: str
    status: ReferralStatus
    at: datetime


@dataclass(frozen=True)
class NewDelivery:
    referral_id: str
    channel: str
    kind: str
    reference: str
    association_id: str
    correlation_id: str
    payload: dict[str, Any]


#: Plans the deliveries of an erasure from the associations told and the person (`erasing`).
Telling = Callable[[list["Holder"], "Person | None"], Sequence[NewDelivery]]


@dataclass(frozen=True)
class Delivery:
    id: int
    referral_id: str
    channel: str
    kind: str
    reference: str
    association_id: str
    correlation_id: str
    status: DeliveryStatus
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
    until: datetime

    def after(self, delivery_id: int) -> "Lease":
        """The same lease over the deliveries that come after `delivery_id`."""
        return Lease(tuple(i for i in self.ids if i > delivery_id), self.until)


class AlreadyAnswered(Exception):
    """The referral was already answered through a link."""


class AlreadyFollowedUp(Exception):
    """The person already answered the follow-up of this referral."""


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
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        payload=json.loads(row.payload) if row.payload else None,
        last_error=row.last_error,
    )


# The statements run once per delivery are built once: building one (and its cache key) costs
# about a quarter of a SQLite transaction.
_FINISH = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("delivery_id"))
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        locked_until=None,
        payload=None,
        last_error=bindparam("error"),
    )
)
_HELD = select(deliveries.c.id).where(
    deliveries.c.id.in_(bindparam("ids", expanding=True)),
    deliveries.c.status == DeliveryStatus.PENDING.value,
    deliveries.c.locked_until == bindparam("until"),
)
_PUBLISH = insert(outbox.table)


def _held(connection: Connection, lease: Lease) -> list[int]:
    if not lease.ids:
        return []
    rows = connection.execute(_HELD, {"ids": list(lease.ids), "until": lease.until})
    return sorted(rows.scalars())


def _publish(connection: Connection, items: Sequence[Message], at: datetime) -> None:
    """Write `items` to the outbox, in the caller's transaction."""
    if items:
        connection.execute(_PUBLISH, outbox.rows(items, at))


def _checked(connection: Connection, references: Collection[str]) -> set[str]:
    """Take the locks of `references` (shared: an effect), then those of them erased."""
    references = {reference for reference in references if reference}
    lock_references(connection, references, erasing=False)
    return erased_among(connection, tombstones, references)


def _hold_references(connection: Connection, references: Sequence[str]) -> None:
    lock_references(connection, references, erasing=False)


def _rank(status: ReferralStatus) -> int:
    return STATUS_RANKS.get(status, 0)


def _insert_deliveries(connection: Connection, items: Sequence[NewDelivery], now: datetime) -> int:
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
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "payload": json.dumps(item.payload),
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


def _keep_people(connection: Connection, found: Sequence[Person], now: datetime) -> None:
    """Keep each person's address, the first decision's (a re-orientation copies it; only a
    first decision says the statistics consent, so a person first offered by a coordinator's
    assignment counts as not consenting: never counted without a consent)."""
    rows = {p.reference: {"reference": p.reference, "first_name": p.first_name,
                          "email": p.email, "locale": p.locale, "noted_at": now,
                          "statistics": p.statistics}
            for p in found}  # fmt: skip
    if rows:
        statement = _insert(connection, people).on_conflict_do_nothing(index_elements=["reference"])
        connection.execute(statement, list(rows.values()))


def _person(connection: Connection, reference: str) -> Person | None:
    row = connection.execute(select(people).where(people.c.reference == reference)).first()
    if row is None:
        return None
    return _person_of(row)


def _person_of(row: Any) -> Person:
    return Person(
        row.reference, row.first_name, row.email, row.locale, statistics=bool(row.statistics)
    )


def _record_once(
    statement: Any, message: Message, reference: str, already: Exception, now: datetime
) -> Work[None]:
    """Insert a once-only record (`statement`, keyed by its referral) and write its `message`
    to the outbox, in one transaction under the reference's lock: `Withdrawn` when the
    reference is erased, `already` when the record exists (nothing published then)."""

    def record(connection: Connection) -> None:
        if _checked(connection, [reference]):
            raise Withdrawn(reference)
        try:
            connection.execute(statement)
        except IntegrityError as error:
            raise already from error
        _publish(connection, [message], now)

    return record


def _insert(connection: Connection, table: Table) -> Any:
    """INSERT … ON CONFLICT in the connection's dialect."""
    return (pg_insert if connection.dialect.name == "postgresql" else sqlite_insert)(table)


def _forget(connection: Connection, references: Collection[str]) -> list[Holder]:
    """Delete every row of `references` (deliveries, offers, answers to their referrals);
    returns the associations each referral was, or may have been, handed to."""
    references = list(references)
    antennas = {
        (a, r): antenna
        for a, r, antenna in connection.execute(
            select(offered.c.association_id, offered.c.referral_id, offered.c.antenna).where(
                offered.c.reference.in_(references)
            )
        )
    }
    for a, r in connection.execute(
        select(deliveries.c.association_id, deliveries.c.referral_id).where(
            deliveries.c.reference.in_(references), deliveries.c.association_id != ""
        )
    ):
        antennas.setdefault((a, r), None)
    holders = {Holder(a, r, antenna) for (a, r), antenna in antennas.items()}
    referral_ids = [holder.referral_id for holder in holders]
    connection.execute(delete(answers).where(answers.c.referral_id.in_(referral_ids)))
    connection.execute(delete(followups).where(followups.c.referral_id.in_(referral_ids)))
    connection.execute(delete(people).where(people.c.reference.in_(references)))
    connection.execute(delete(deliveries).where(deliveries.c.reference.in_(references)))
    connection.execute(delete(offered).where(offered.c.reference.in_(references)))
    return sorted(holders, key=lambda h: (h.association_id, h.referral_id))


class DeliveryStore:
    """The notifier's tables on one `rebond_sql.Database` (migrated beforehand), and its clock."""

    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self.database = database
        self.clock = clock
        self.outbox = outbox

    @classmethod
    def from_url(cls, url: str, clock: Clock = utc_now) -> "DeliveryStore":
        return cls(Database(url, name="notifier"), clock)

    async def close(self) -> None:
        await self.database.close()

    def relay(self, send: Send) -> Relay:
        """The relay of this store's outbox through `send`: it holds the references' shared
        locks until Kafka acknowledged what it publishes, so an erasure (the exclusive lock)
        waits for a referral in flight (see `offer`)."""
        return Relay(self.database, self.outbox, send, self.clock, lock=_hold_references)

    async def enqueue(
        self,
        items: list[NewDelivery],
        *,
        states: Sequence[ReferralState] = (),
        now: datetime | None = None,
    ) -> int:
        """Record pending deliveries; those already known, and those about an erased
        reference, are left alone. Returns how many are new. `states` (the referrals' statuses
        read with them) are recorded in the same transaction, each only where it does not go
        back on a later status (`STATUS_RANKS`)."""
        now = now or self.clock()
        latest: dict[str, ReferralState] = {}
        for state in states:  # one row per referral: an upsert may not touch a row twice
            known = latest.get(state.referral_id)
            if known is None or _rank(state.status) >= _rank(known.status):
                latest[state.referral_id] = state
        state_rows = [
            {"referral_id": s.referral_id, "status": s.status.value, "rank": _rank(s.status),
             "at": s.at}
            for s in latest.values()
        ]  # fmt: skip
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

    async def antennas(self, referral_ids: Collection[str]) -> dict[str, str]:
        """The antenna (JSON) each of `referral_ids` was offered to, for those offered to one."""
        if not referral_ids:
            return {}
        query = select(offered.c.referral_id, offered.c.antenna).where(
            offered.c.referral_id.in_(list(referral_ids)), offered.c.antenna.is_not(None)
        )
        return await self.database.run(
            lambda connection: {r: a for r, a in connection.execute(query)}
        )

    async def referral_state(self, referral_id: str) -> ReferralState | None:
        """The referral's latest status, or None when none was read yet."""
        query = select(referral_states).where(referral_states.c.referral_id == referral_id)

        def read(connection: Connection) -> ReferralState | None:
            row = connection.execute(query).first()
            if row is None:
                return None
            return ReferralState(row.referral_id, ReferralStatus(row.status), row.at)

        return await self.database.run(read)

    async def offer(self, offers: Sequence[Offer], *, now: datetime | None = None) -> Offered:
        """For the offers of references not erased: note each offer (`notifier_referrals`),
        record the deliveries it calls for and write its referral to the outbox, in one
        transaction under the references' (shared) locks; the others are left out. A referral
        is written to the outbox once: a decision read again (after a failed flush, a crash or
        a rebalance) finds its offer queued, and the outbox keeps its message until Kafka
        acknowledged it, so the relay publishes it once, or again under the same event id only
        after a crash between Kafka's acknowledgement and the message's deletion.

        The relay publishes the outbox holding the references' shared locks until Kafka has
        acknowledged what it read (`rebond_sql.outbox.Relay`, given `lock`). An erasure takes
        the reference's lock exclusively and, in one transaction, keeps the tombstone, deletes
        the reference's unsent messages and every row of it, and writes a withdrawal notice
        for every offer it finds noted. So whatever the order:

        - erased before this transaction: nothing is noted, recorded or written to publish;
        - erased after it, before the relay took the referral: the erasure deletes the
          referral from the outbox (it never goes) and withdraws the offer (a notice the
          association can ignore), its deliveries are deleted unsent;
        - erased while the relay publishes the referral: the erasure waits for Kafka's
          acknowledgement and the relay's commit; its withdrawal is written, and so published,
          after the referral, on the same partition (both keyed by the reference): the
          association reads the offer, then the withdrawal;
        - the relay fails, or the process dies while it publishes (the referral may be on
          Kafka): the message stays and goes with the next flush under its event id, and the
          offer stays noted, so a later erasure still withdraws it.

        No interleaving publishes a referral after its erasure's withdrawal, or leaves one
        published without a withdrawal following it. (A SQLite store, which belongs to one
        process, gets the same orders from the relay's flushes taking turns: see
        `rebond_sql.outbox`.) The deliveries are recorded with the offer, so an e-mail may go
        out before Kafka took the referral; an erasure stops them as it stops the referral."""
        now = now or self.clock()
        if not offers:
            return Offered([], [], 0)

        def note(connection: Connection) -> Offered:
            erased = _checked(connection, {offer.reference for offer in offers})
            kept = [offer for offer in offers if offer.reference not in erased]
            if kept:
                upsert = _insert(connection, offered)
                queued = set(
                    connection.execute(
                        upsert.on_conflict_do_update(
                            index_elements=["referral_id"],
                            set_={"queued_at": upsert.excluded.queued_at},
                            where=offered.c.queued_at.is_(None),
                        ).returning(offered.c.referral_id),
                        [{"referral_id": o.referral_id, "reference": o.reference,
                          "association_id": o.association_id, "noted_at": now,
                          "queued_at": now, "antenna": o.antenna} for o in kept],
                    ).scalars()
                )  # fmt: skip
                _publish(connection, [o.message for o in kept if o.referral_id in queued], now)
                _keep_people(connection, [o.person for o in kept if o.person is not None], now)
            added = _insert_deliveries(connection, [d for o in kept for d in o.deliveries], now)
            return Offered(kept, [o for o in offers if o.reference in erased], added)

        return await self.database.run(note)

    async def due(
        self,
        *,
        now: datetime | None = None,
        limit: int = 500,
        except_lanes: Collection[tuple[str, str]] = (),
    ) -> list[Delivery]:
        """Pending deliveries whose time has come and that no worker holds, leaving out the
        lanes (channel, association) named in `except_lanes`: those a worker of this process is
        already draining; their rows would be read and decoded only to be dropped."""
        now = now or self.clock()
        query = (
            select(deliveries)
            .where(
                deliveries.c.status == DeliveryStatus.PENDING.value,
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

    async def next_due(
        self, *, now: datetime | None = None, except_lanes: Collection[tuple[str, str]] = ()
    ) -> datetime | None:
        """The earliest time a pending delivery outside `except_lanes` may be claimable: its
        `next_attempt_at`, or the end of the lease that holds it (a lower bound: waking then
        finds it sent, or due). None when nothing is pending. Only pending rows are read, found
        through `ix_notifier_deliveries_due`: the cost follows what waits, not the history."""
        now = now or self.clock()
        held = deliveries.c.locked_until >= now
        query = select(
            type_coerce(
                func.min(case((held, deliveries.c.locked_until),
                              else_=deliveries.c.next_attempt_at)),
                UTCDateTime,
            )
        ).where(deliveries.c.status == DeliveryStatus.PENDING.value)  # fmt: skip
        if except_lanes:
            lane = tuple_(deliveries.c.channel, deliveries.c.association_id)
            query = query.where(lane.not_in(list(except_lanes)))
        found: datetime | None = await self.database.run(
            lambda connection: connection.execute(query).scalar()
        )
        return found

    async def claim_many(
        self, delivery_ids: Sequence[int], lease: timedelta, *, now: datetime | None = None
    ) -> Lease:
        """Take, in one statement, those of `delivery_ids` that are pending, due and held by no
        worker, for `lease`; the lease lists those taken. A row read a while ago may have been
        tried and put off by another replica meanwhile, hence the conditions. On PostgreSQL a
        row another transaction claims at the same time is re-checked against these conditions
        once that one commits, so it is not taken twice."""
        now = now or self.clock()
        until = now + lease
        if not delivery_ids:
            return Lease((), until)
        statement = (
            update(deliveries)
            .where(
                deliveries.c.id.in_(list(delivery_ids)),
                deliveries.c.status == DeliveryStatus.PENDING.value,
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
        at: datetime,
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
        delivery: Delivery,
        status: DeliveryStatus,
        attempts: int,
        error: str | None = None,
        *,
        then_check: Lease | None = None,
        now: datetime | None = None,
    ) -> list[int]:
        """Final outcome: the rendered message is erased and the outcome (`DeliveryV1`) written
        to the outbox, in one transaction; nothing when an erasure deleted the row meanwhile.
        With `then_check`, returns `held(then_check)` read in the same transaction."""
        assert status in FINAL
        now = now or self.clock()
        row = {"delivery_id": delivery.id, "status": status.value, "attempts": attempts,
               "error": error}  # fmt: skip
        outcome = messages.outcome(delivery, status, attempts, now)

        def record(connection: Connection) -> list[int]:
            if connection.execute(_FINISH, row).rowcount and outcome is not None:
                _publish(connection, [outcome], now)
            return [] if then_check is None else _held(connection, then_check)

        return await self.database.run(record)

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
        message: Message,
        *,
        reference: str,
        now: datetime | None = None,
    ) -> None:
        """Mark the referral answered and write the answer's `message` to the outbox, in one
        transaction: the answer is published once committed (the relay, after the commit), or
        not at all. A second answer raises `AlreadyAnswered`, one about an erased reference
        `Withdrawn` (read under the reference's lock: an erasure under way is waited for)."""
        now = now or self.clock()
        statement = insert(answers).values(
            referral_id=referral_id,
            association_id=association_id,
            answer=answer,
            reason=reason,
            answered_at=now,
        )

        await self.database.run(
            _record_once(statement, message, reference, AlreadyAnswered(referral_id), now)
        )

    # --- erasure and anonymisation ----------------------------------------------------------

    async def erased_among(self, references: list[str]) -> set[str]:
        """Those of `references` whose person asked for erasure."""
        return await self.database.run(
            lambda connection: erased_among(connection, tombstones, references)
        )

    async def erase(
        self,
        reference: str,
        notices: Callable[[list[Holder]], Sequence[Message]],
        *,
        told: Telling | None = None,
        now: datetime | None = None,
    ) -> list[Holder]:
        """Keep the tombstone of `reference`, delete every row of it and its unsent messages,
        and write the withdrawal `notices` of the associations its referrals were (or may have
        been) handed to (`erasing`), and the deliveries `told` plans. Returns those
        associations."""
        work = self.erasing(reference, notices, now or self.clock(), told=told)
        return await self.database.run(work)

    def erasing(
        self,
        reference: str,
        notices: Callable[[list[Holder]], Sequence[Message]],
        now: datetime,
        *,
        told: Telling | None = None,
    ) -> Work[list[Holder]]:
        """The erasure of `reference` as one piece of work, run in one transaction holding the
        reference's lock exclusively (see `offer`). It returns the holders told; none when the
        reference was erased before (they were told then: that erasure's notices are in the
        outbox until Kafka has them, and nothing was recorded since).

        `told(holders, person)` plans the e-mails and webhooks of the erasure: the withdrawal to
        each association, the confirmation to the person, whose address is read here, before
        the erasure deletes it, and so is in no row once the confirmation is sent (the
        dispatcher erases a sent message). They are recorded with no reference (as the
        conference e-mails: no row keeps the erased reference) in this same transaction, so a
        second erasure of the reference, which finds the tombstone, records none again."""

        def erase(connection: Connection) -> list[Holder]:
            lock_references(connection, [reference], erasing=True)
            first = connection.execute(
                _insert(connection, tombstones)
                .values(reference_sha256=reference_digest(reference), erased_at=now)
                .on_conflict_do_nothing()
                .returning(tombstones.c.reference_sha256)
            ).first()
            if first is None:
                return []
            person = _person(connection, reference)
            holders = _forget(connection, [reference])
            self.outbox.forget_subject(connection, reference)
            _publish(connection, notices(holders), now)
            if told is not None:
                _insert_deliveries(connection, told(holders, person), now)
            return holders

        return erase

    # --- the person's e-mails -------------------------------------------------------------

    async def people(self, references: Collection[str]) -> dict[str, Person]:
        """The people to write to among `references` (those who gave an address, not erased)."""
        if not references:
            return {}
        query = select(people).where(people.c.reference.in_(list(references)))
        return await self.database.run(
            lambda connection: {row.reference: _person_of(row) for row in connection.execute(query)}
        )

    async def told(self, references: Collection[str]) -> dict[str, list[Told]]:
        """The e-mails recorded for the person of each of `references`, oldest first (the
        confirmation among them: only the steps' kinds mean anything to `planning.earlier`)."""
        if not references:
            return {}
        query = (
            select(deliveries.c.reference, deliveries.c.kind, deliveries.c.association_id)
            .where(
                deliveries.c.reference.in_(list(references)),
                deliveries.c.channel == DeliveryChannel.PERSON_EMAIL.value,
            )
            .order_by(deliveries.c.id)
        )

        def read(connection: Connection) -> dict[str, list[Told]]:
            found: dict[str, list[Told]] = {}
            for row in connection.execute(query):
                found.setdefault(row.reference, []).append(Told(row.kind, row.association_id))
            return found

        return await self.database.run(read)

    async def record_follow_up(
        self,
        referral_id: str,
        contacted: bool,
        message: Message,
        *,
        reference: str,
        now: datetime | None = None,
    ) -> None:
        """Record the person's follow-up answer and write its `message` to the outbox, in one
        transaction (published once committed, as an answer through a link). A second answer
        raises `AlreadyFollowedUp`, one about an erased reference `Withdrawn`."""
        now = now or self.clock()
        statement = insert(followups).values(
            referral_id=referral_id, contacted=contacted, answered_at=now
        )

        await self.database.run(
            _record_once(statement, message, reference, AlreadyFollowedUp(referral_id), now)
        )

    async def follow_up_given(self, referral_id: str) -> bool | None:
        """The person's follow-up answer for the referral, None when not given yet."""
        query = select(followups.c.contacted).where(followups.c.referral_id == referral_id)
        return await self.database.run(lambda connection: connection.execute(query).scalar())

    async def forget_people(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Delete the addresses kept longer than `older_than` (the request's steps are over:
        the follow-up comes 30 days after an acceptance). Returns how many."""
        cutoff = (now or self.clock()) - older_than
        statement = delete(people).where(people.c.noted_at < cutoff)
        return await self.database.run(
            lambda connection: int(connection.execute(statement).rowcount or 0)
        )

    async def anonymise(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Rows recorded more than `older_than` ago lose their message and error text; one
        still pending that long is given up (failed, its outcome published). Returns how many
        rows changed. Referral states unchanged that long are forgotten: every answer link
        they could serve has expired (a link lasts until its deadline, days away, never
        weeks)."""
        now = now or self.clock()
        cutoff = now - older_than
        stale = (
            deliveries.c.created_at < cutoff,
            deliveries.c.status == DeliveryStatus.PENDING.value,
        )

        def anonymise(connection: Connection) -> int:
            given_up = [_row(row) for row in connection.execute(select(deliveries).where(*stale))]
            if given_up:
                failed = DeliveryStatus.FAILED
                connection.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_([d.id for d in given_up]))
                    .values(status=failed.value, locked_until=None)
                )
                outcomes = [messages.outcome(d, failed, d.attempts, now) for d in given_up]
                _publish(connection, [m for m in outcomes if m is not None], now)
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


__all__ = ["DeliveryStatus", "DeliveryStore", "Lease", "NewDelivery"]
