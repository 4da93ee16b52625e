"""The router's store, its SQL `ReferralRepository` (SQLAlchemy Core through `rebond_sql`):
referrals, offers, weekly counts, handled answers, tombstones, and an outbox.

SQLite (a file) by default, PostgreSQL supported; the schema is made and changed by the Alembic
migrations in `migrations/` (`migrate`), never by this module. Each referral's new value and
the events it must publish are written in one transaction (`rebond_sql.outbox`), then
published; so a crash between the two loses nothing: the outbox is flushed again later.

Personal data kept: the referral to re-offer (`template`: contact, message) while the referral
is still moving between associations; it is dropped once an association accepts. The rest of a
referral's row (states, candidates and their reasons, scores, who was tried, whether it is
urgent, the situation the human queue needs: stage, region, department, needs; the follow-up's
time and the association's reported outcome) is about the routing, kept for the statistics; but it also tells whether the person
said they are in distress (the `urgent` flag, the distress points and reasons, APESA among the
candidates).

So an erasure deletes the referrals' rows, their offers and their unpublished outputs, and
keeps only `router_erasures`: the reference's SHA-256 (`rebond_sql.erasure`) and when it was
erased. Every input about a reference (a questionnaire, an answer) reads that tombstone in the
transaction of its effect, under the reference's lock (`rebond_sql.erasure.lock_references`),
so that nothing is routed or answered after an erasure, whatever order the topics are read in.
The tombstones live apart from `router_handled_events`, whose keys are the event ids of
associations' answers, chosen by the associations: an answer whose id mimics an erasure marker
cannot stand for one.
"""

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Index,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    OutcomeKind,
    Reason,
    ReferralV1,
    ScoreBreakdown,
    TriedAssociation,
)
from rebond_contracts.questionnaire import CompanySize, Need, Stage
from rebond_router.lifecycle import BatchStart, ConcurrentChange
from rebond_router.referral import (
    EVENTS_PER_DECISION,
    OPEN,
    Case,
    Key,
    Offer,
    Referral,
    State,
    Track,
    week_start,
)
from rebond_router.rules import StoredCandidate
from rebond_router.scoring import Features
from rebond_sql import Database, Transaction, Work
from rebond_sql.erasure import erased_among, lock_references, reference_digest, tombstone_table
from rebond_sql.migrations import upgrade
from rebond_sql.outbox import Message, Outbox, Relay, Send, outbox_table
from rebond_sql.types import Clock, UTCDateTime

MIGRATIONS = Path(__file__).with_name("migrations")

metadata = MetaData()

referrals = Table(
    "router_referrals",
    metadata,
    Column("reference", String(32), primary_key=True),
    #: `rebond_router.referral.Track`: a reference may hold one referral per track.
    Column("track", String(20), primary_key=True),
    Column("decision_id", String(36), nullable=False, unique=True),
    Column("correlation_id", String(200), nullable=False),
    Column("rule_set_version", String(100), nullable=False),
    Column("urgent", Boolean, nullable=False),
    #: `rebond_router.referral.State`
    Column("status", String(20), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("holder", String(40)),
    Column("referral_id", String(36)),
    Column("deadline", UTCDateTime),
    Column("remind_at", UTCDateTime),
    Column("reminded", Boolean, nullable=False),
    #: Candidates still to try, holder first: [{association, score, reasons}]
    Column("candidates", JSON, nullable=False),
    Column("scores", JSON, nullable=False),
    #: Associations tried so far: [{association_id, referral_id, outcome, reason}]
    Column("tried", JSON, nullable=False),
    #: The referral to re-offer (ReferralV1 JSON); dropped once accepted.
    Column("template", Text),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    #: `rebond_router.referral.Case`: {stage, region, department, needs}, for the human queue.
    Column("case_facts", JSON),
    #: When the person is asked whether they were contacted (accepted referrals).
    Column("follow_up_at", UTCDateTime),
    #: `rebond_contracts.payloads.OutcomeKind`: the holder's latest report after accepting.
    Column("outcome", String(30)),
    #: When the first decision was made, and `rebond_router.scoring.Features` ({stage, region,
    #: needs, company_size, distress}): what the policy preview replays (`Store.replayable`).
    Column("decided_at", UTCDateTime, index=True),
    Column("features", JSON),
    # The deadline sweep's three queries (`Tx.due`, `reminders_due`, `follow_ups_due`), each
    # a search by status and by its own time: a round reads what is due, however many
    # referrals are open (with one index on status, each read every open referral: 40 ms a
    # query at 33,000, measured; the bench's idle router grew with its history).
    Index("ix_router_referrals_status_deadline", "status", "deadline"),
    Index("ix_router_referrals_status_remind_at", "status", "remind_at"),
    Index("ix_router_referrals_status_follow_up_at", "status", "follow_up_at"),
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

handled = Table(
    "router_handled_events",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("handled_at", UTCDateTime, nullable=False),
)

#: One row per erased reference, nothing else about it (see the module's docstring).
erasures = tombstone_table(metadata, "router_erasures")

#: What the router publishes, written with the state change that causes it.
OUTBOX = Outbox(outbox_table(metadata, "router_outbox"))

T = TypeVar("T")


@dataclass(frozen=True)
class Replayable:
    """A stored first decision as the policy preview replays it (`Store.replayable`)."""

    track: Track
    decided_at: datetime
    features: Features
    #: The person consented to be contacted: a referral was (or would be) offered.
    shared: bool


def migrate(database_url: str) -> None:
    """Bring the store at `database_url` to the newest migration (`python -m rebond_router
    migrate`, or at start with `ROUTER_MIGRATE_ON_START`)."""
    upgrade(database_url, MIGRATIONS)


def _upsert(connection: Connection, table: Table) -> Any:
    """INSERT ... ON CONFLICT in the connection's dialect (SQLite and PostgreSQL say it alike)."""
    return (pg_insert if connection.dialect.name == "postgresql" else sqlite_insert)(table)


class Tx:
    """One transaction on the store: the `ReferralTransaction` of `rebond_router.lifecycle`.

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

    # --- reads -----------------------------------------------------------------------------

    async def start_batch(self, references: Sequence[str], week: datetime) -> BatchStart:
        """In one step, once this transaction holds the references' locks: those decided
        before, those erased, and the offers of `week`."""

        def read(connection: Connection) -> BatchStart:
            lock_references(connection, references, erasing=False)
            known = select(referrals.c.reference).where(referrals.c.reference.in_(references))
            return BatchStart(
                known=set(connection.execute(known).scalars()),
                erased=erased_among(connection, erasures, references),
                week_offers=_week_loads(connection, week),
            )

        return await self.run(read)

    async def erased(self, reference: str) -> bool:
        def read(connection: Connection) -> bool:
            lock_references(connection, [reference], erasing=False)
            return bool(erased_among(connection, erasures, [reference]))

        return await self.run(read)

    async def referrals(self, reference: str, *, lock: bool = False) -> list[Referral]:
        """`lock` takes row locks on PostgreSQL (SKIP LOCKED: a row held elsewhere is left out)."""
        query = select(referrals).where(referrals.c.reference == reference)
        query = query.order_by(referrals.c.track)
        if lock:
            query = query.with_for_update(skip_locked=True)
        return await self.run(lambda c: [_referral(row) for row in c.execute(query).mappings()])

    async def referral(self, key: Key, *, lock: bool = False) -> Referral | None:
        query = select(referrals).where(
            referrals.c.reference == key.reference, referrals.c.track == key.track.value
        )
        if lock:
            query = query.with_for_update(skip_locked=True)

        def read(connection: Connection) -> Referral | None:
            row = connection.execute(query).mappings().first()
            return _referral(row) if row is not None else None

        return await self.run(read)

    async def offered_in_week(self, week: datetime) -> dict[AssociationId, int]:
        """Offers made to each association in the week starting at `week` (`week_start`)."""
        return await self.run(lambda connection: _week_loads(connection, week))

    async def handled(self, event_id: str) -> bool:
        query = select(handled.c.event_id).where(handled.c.event_id == event_id)
        return await self.run(lambda connection: connection.execute(query).first() is not None)

    async def due(self, now: datetime, limit: int) -> list[Key]:
        return await self._keys_due(
            referrals.c.deadline,
            limit,
            referrals.c.status.in_([s.value for s in OPEN]),
            referrals.c.deadline <= now,
        )

    async def follow_ups_due(self, now: datetime, limit: int) -> list[Key]:
        return await self._keys_due(
            referrals.c.follow_up_at,
            limit,
            referrals.c.status == State.ACCEPTED.value,
            referrals.c.follow_up_at <= now,
        )

    async def reminders_due(self, now: datetime, limit: int) -> list[Key]:
        return await self._keys_due(
            referrals.c.remind_at,
            limit,
            referrals.c.status == State.OFFERED.value,
            referrals.c.reminded.is_(False),
            referrals.c.remind_at <= now,
            referrals.c.deadline > now,
        )

    async def _keys_due(
        self, by: ColumnElement[Any], limit: int, *where: ColumnElement[bool]
    ) -> list[Key]:
        """The first `limit` referrals matching `where`, earliest `by` first, locked for this
        transaction (`SKIP LOCKED`: another instance's sweep takes the others)."""
        query = (
            select(referrals.c.reference, referrals.c.track)
            .where(*where)
            .order_by(by)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self.run(lambda c: [Key(r, Track(t)) for r, t in c.execute(query)])

    # --- writes ----------------------------------------------------------------------------

    async def add(
        self, referral: Referral, offer: Offer | None, messages: Sequence[Message], at: datetime
    ) -> None:
        self._inserts.setdefault(referrals, []).append({**_row(referral), "version": 1})
        self._record(referral.reference, offer, messages, at)

    async def save(
        self, referral: Referral, offer: Offer | None, messages: Sequence[Message], at: datetime
    ) -> None:
        """Conditional update: only if nobody changed the row since it was read (the claim)."""
        statement = (
            update(referrals)
            .where(
                referrals.c.reference == referral.reference,
                referrals.c.track == referral.track.value,
                referrals.c.version == referral.version,
            )
            .values(version=referral.version + 1, **_row(referral))
        )
        changed = await self.run(lambda connection: connection.execute(statement).rowcount)
        if changed != 1:
            raise ConcurrentChange(referral.reference)
        self._record(referral.reference, offer, messages, at)

    async def mark_handled(self, event_id: str, at: datetime) -> None:
        statement = insert(handled).values(event_id=event_id, handled_at=at)
        await self.run(lambda connection: connection.execute(statement))

    async def erase(self, reference: str, at: datetime) -> bool:
        def run(connection: Connection) -> bool:
            lock_references(connection, [reference], erasing=True)
            if erased_among(connection, erasures, [reference]):
                return False
            tombstone = {"reference_sha256": reference_digest(reference), "erased_at": at}
            connection.execute(insert(erasures).values(tombstone))
            return True

        return await self.run(run)

    async def forget(self, reference: str, messages: Sequence[Message], at: datetime) -> None:
        def run(connection: Connection) -> None:
            connection.execute(delete(referrals).where(referrals.c.reference == reference))
            connection.execute(delete(offers).where(offers.c.reference == reference))
            OUTBOX.forget_subject(connection, reference)

        await self.run(run)
        self._record(reference, None, messages, at)

    def _record(
        self, reference: str, offer: Offer | None, messages: Sequence[Message], at: datetime
    ) -> None:
        """Buffer the offer (and its weekly count) and the outbox rows."""
        if offer is not None:
            association = offer.association.value
            self._inserts.setdefault(offers, []).append(
                {"referral_id": str(offer.referral_id), "reference": reference,
                 "association_id": association, "offered_at": offer.at}
            )  # fmt: skip
            week = (association, week_start(offer.at))
            self._week_offers[week] = self._week_offers.get(week, 0) + 1
        if messages:
            self._inserts.setdefault(OUTBOX.table, []).extend(OUTBOX.rows(messages, at))


def _row(referral: Referral) -> dict[str, Any]:
    """A referral's columns (its version aside)."""
    return {
        "reference": referral.reference,
        "track": referral.track.value,
        "decision_id": str(referral.decision_id),
        "correlation_id": referral.correlation_id,
        "rule_set_version": referral.rule_set_version,
        "urgent": referral.urgent,
        "status": referral.state.value,
        "attempt": referral.attempt,
        "holder": referral.holder.value if referral.holder else None,
        "referral_id": str(referral.referral_id) if referral.referral_id else None,
        "deadline": referral.deadline,
        "remind_at": referral.remind_at,
        "reminded": referral.reminded,
        "candidates": [
            {
                "association": c.association.value,
                "score": c.score.model_dump(mode="json"),
                "reasons": [r.model_dump(mode="json") for r in c.reasons],
            }
            for c in referral.candidates
        ],
        "scores": [s.model_dump(mode="json") for s in referral.scores],
        "tried": [t.model_dump(mode="json") for t in referral.tried],
        "template": referral.template.model_dump_json() if referral.template else None,
        "updated_at": referral.updated_at,
        "case_facts": _case_facts(referral.case),
        "follow_up_at": referral.follow_up_at,
        "outcome": referral.outcome.value if referral.outcome else None,
        "decided_at": referral.decided_at,
        "features": _features(referral.features),
    }


def _case_facts(case: Case | None) -> dict[str, Any] | None:
    if case is None:
        return None
    return {
        "stage": case.stage.value, "region": case.region, "department": case.department,
        "needs": [n.value for n in case.needs], "statistics": case.statistics,
    }  # fmt: skip


def _features(features: Features | None) -> dict[str, Any] | None:
    if features is None:
        return None
    return {
        "stage": features.stage.value, "region": features.region,
        "needs": [n.value for n in features.needs], "company_size": features.company_size.value,
        "distress": features.distress,
    }  # fmt: skip


def _features_of(stored: Mapping[str, Any] | None) -> Features | None:
    if stored is None:
        return None
    return Features(
        Stage(stored["stage"]), stored["region"], tuple(Need(n) for n in stored["needs"]),
        CompanySize(stored["company_size"]), bool(stored["distress"]),
    )  # fmt: skip


def _case(facts: Mapping[str, Any] | None) -> Case | None:
    if facts is None:
        return None
    needs = tuple(Need(n) for n in facts["needs"])
    # Rows older than the statistics' feed say nothing of the consent: counted as refused.
    consented = bool(facts.get("statistics", False))
    return Case(Stage(facts["stage"]), facts["region"], facts["department"], needs, consented)


def _referral(row: RowMapping) -> Referral:
    return Referral(
        reference=row["reference"],
        track=Track(row["track"]),
        decision_id=UUID(row["decision_id"]),
        correlation_id=row["correlation_id"],
        rule_set_version=row["rule_set_version"],
        urgent=row["urgent"],
        state=State(row["status"]),
        attempt=row["attempt"],
        holder=AssociationId(row["holder"]) if row["holder"] else None,
        referral_id=UUID(row["referral_id"]) if row["referral_id"] else None,
        deadline=row["deadline"],
        remind_at=row["remind_at"],
        reminded=row["reminded"],
        candidates=tuple(
            StoredCandidate(
                association=AssociationId(c["association"]),
                score=ScoreBreakdown.model_validate(c["score"]),
                reasons=tuple(Reason.model_validate(r) for r in c["reasons"]),
            )
            for c in row["candidates"]
        ),
        scores=tuple(ScoreBreakdown.model_validate(s) for s in row["scores"]),
        tried=tuple(TriedAssociation.model_validate(t) for t in row["tried"]),
        template=ReferralV1.model_validate_json(row["template"]) if row["template"] else None,
        updated_at=row["updated_at"],
        version=row["version"],
        case=_case(row["case_facts"]),
        follow_up_at=row["follow_up_at"],
        outcome=OutcomeKind(row["outcome"]) if row["outcome"] else None,
        decided_at=row["decided_at"],
        features=_features_of(row["features"]),
    )


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
    """The router's `ReferralRepository` on one `rebond_sql.Database`, and its outbox."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.outbox = OUTBOX

    @classmethod
    def from_url(cls, url: str) -> "Store":
        return cls(Database(url, name="router"))

    async def start(self) -> None:
        """Open the database now, to fail fast (it opens on first use otherwise)."""
        await self.database.start()

    async def close(self) -> None:
        await self.database.close()

    def relay(self, send: Send, clock: Clock, batch_max_records: int = 500) -> Relay:
        """What publishes this store's outbox through `send` (the lifecycle's `Publisher`).
        A batch of `batch_max_records` questionnaires is read back and put in flight in one
        round (each first decision writes at most `EVENTS_PER_DECISION` events), as the router
        did before the shared outbox: a second round would wait for the first's
        acknowledgements."""
        per_round = max(1000, EVENTS_PER_DECISION * batch_max_records)
        return Relay(self.database, self.outbox, send, clock, batch=per_round)

    async def replayable(self, since: datetime) -> list[Replayable]:
        """The first decisions made since `since`, oldest first, as the policy preview replays
        them: when, on which track, what scoring read of the person, and whether the person
        consented to be contacted (only then does a decision take a place of an association's
        weekly capacity). Rows of erased people are gone (`Tx.forget`), and rows older than
        the `features` column have none and are left out."""
        query = (
            select(referrals.c.track, referrals.c.decided_at, referrals.c.features,
                   referrals.c.status)
            .where(referrals.c.decided_at >= since, referrals.c.features.is_not(None))
            .order_by(referrals.c.decided_at, referrals.c.reference, referrals.c.track)
        )  # fmt: skip

        def read(connection: Connection) -> list[Replayable]:
            return [
                Replayable(Track(track), at, features, status != State.NOT_SHARED.value)
                for track, at, stored, status in connection.execute(query)
                if (features := _features_of(stored)) is not None
            ]

        return await self.database.run(read)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.database.transaction() as transaction:
            tx = Tx(transaction)
            yield tx
            await tx.write()
        for callback in tx._on_commit:
            callback()
