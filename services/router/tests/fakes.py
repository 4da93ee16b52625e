"""The router's ports in memory: a `ReferralRepository` whose transactions work on a copy kept
only on commit, and a `Publisher` that hands its outbox to a fake Kafka."""

import copy
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from rebond_contracts.associations import AssociationId
from rebond_router.lifecycle import BatchStart, ConcurrentChange
from rebond_router.referral import OPEN, Key, Offer, Referral, State, week_start
from rebond_sql.outbox import Message

from .conftest import FakeOutputs


@dataclass
class Stored:
    """What the fake repository holds."""

    referrals: dict[Key, Referral] = field(default_factory=dict)
    week_offers: dict[tuple[AssociationId, datetime], int] = field(default_factory=dict)
    offers: list[tuple[str, Offer]] = field(default_factory=list)
    handled: set[str] = field(default_factory=set)
    tombstones: set[str] = field(default_factory=set)
    #: (message, written at), in the order written.
    outbox: list[tuple[Message, datetime]] = field(default_factory=list)


class FakeTransaction:
    """A `ReferralTransaction` on a copy of the repository's contents."""

    def __init__(self, stored: Stored) -> None:
        self.stored = stored
        self.callbacks: list[Callable[[], None]] = []

    async def start_batch(self, references: Sequence[str], week: datetime) -> BatchStart:
        return BatchStart(
            known={k.reference for k in self.stored.referrals} & set(references),
            erased=self.stored.tombstones & set(references),
            week_offers=await self.offered_in_week(week),
        )

    async def offered_in_week(self, week: datetime) -> dict[AssociationId, int]:
        return {a: n for (a, w), n in self.stored.week_offers.items() if w == week}

    async def erased(self, reference: str) -> bool:
        return reference in self.stored.tombstones

    async def referrals(self, reference: str, *, lock: bool = False) -> list[Referral]:
        found = (r for k, r in self.stored.referrals.items() if k.reference == reference)
        return sorted(found, key=lambda r: r.track)

    async def referral(self, key: Key, *, lock: bool = False) -> Referral | None:
        return self.stored.referrals.get(key)

    async def add(
        self, referral: Referral, offer: Offer | None, messages: Sequence[Message], at: datetime
    ) -> None:
        self.stored.referrals[referral.key] = replace(referral, version=1)
        self._record(referral.reference, offer, messages, at)

    async def save(
        self, referral: Referral, offer: Offer | None, messages: Sequence[Message], at: datetime
    ) -> None:
        stored = self.stored.referrals.get(referral.key)
        if stored is None or stored.version != referral.version:
            raise ConcurrentChange(referral.reference)
        self.stored.referrals[referral.key] = replace(referral, version=referral.version + 1)
        self._record(referral.reference, offer, messages, at)

    async def handled(self, event_id: str) -> bool:
        return event_id in self.stored.handled

    async def mark_handled(self, event_id: str, at: datetime) -> None:
        self.stored.handled.add(event_id)

    async def due(self, now: datetime, limit: int) -> list[Key]:
        due = [
            r for r in self.stored.referrals.values()
            if r.state in OPEN and r.deadline is not None and r.deadline <= now
        ]  # fmt: skip
        return [r.key for r in sorted(due, key=lambda r: r.deadline or now)][:limit]

    async def reminders_due(self, now: datetime, limit: int) -> list[Key]:
        due = [
            r for r in self.stored.referrals.values()
            if r.state is State.OFFERED and not r.reminded and r.remind_at is not None
            and r.deadline is not None and r.remind_at <= now < r.deadline
        ]  # fmt: skip
        return [r.key for r in sorted(due, key=lambda r: r.remind_at or now)][:limit]

    async def follow_ups_due(self, now: datetime, limit: int) -> list[Key]:
        due = [
            r for r in self.stored.referrals.values()
            if r.state is State.ACCEPTED and r.follow_up_at is not None and r.follow_up_at <= now
        ]  # fmt: skip
        return [r.key for r in sorted(due, key=lambda r: r.follow_up_at or now)][:limit]

    async def erase(self, reference: str, at: datetime) -> bool:
        new = reference not in self.stored.tombstones
        self.stored.tombstones.add(reference)
        return new

    async def forget(self, reference: str, messages: Sequence[Message], at: datetime) -> None:
        stored = self.stored
        stored.referrals = {k: r for k, r in stored.referrals.items() if k.reference != reference}
        stored.offers = [(ref, o) for ref, o in stored.offers if ref != reference]
        stored.outbox = [(m, t) for m, t in stored.outbox if m.subject != reference]
        self._record(reference, None, messages, at)

    def on_commit(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def _record(
        self, reference: str, offer: Offer | None, messages: Sequence[Message], at: datetime
    ) -> None:
        if offer is not None:
            self.stored.offers.append((reference, offer))
            week = (offer.association, week_start(offer.at))
            self.stored.week_offers[week] = self.stored.week_offers.get(week, 0) + 1
        self.stored.outbox.extend((m, at) for m in messages)


class FakeReferrals:
    """A `ReferralRepository` in memory: all of a transaction, or nothing of it."""

    def __init__(self) -> None:
        self.stored = Stored()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTransaction]:
        tx = FakeTransaction(copy.deepcopy(self.stored))
        yield tx
        self.stored = tx.stored
        for callback in tx.callbacks:
            callback()

    def put(self, referral: Referral) -> None:
        """Hold `referral` as if saved (at its version)."""
        self.stored.referrals[referral.key] = referral


@dataclass
class FakePublisher:
    """Publishes the repository's outbox to `outputs` in order, forgetting what was taken."""

    referrals: FakeReferrals
    outputs: FakeOutputs
    clock: Callable[[], datetime]

    async def flush(
        self, subjects: Sequence[str] | None = None, older_than: timedelta | None = None
    ) -> int:
        before = self.clock() - older_than if older_than is not None else None
        stored = self.referrals.stored
        chosen = [
            (m, at) for m, at in stored.outbox
            if (subjects is None or m.subject in subjects) and (before is None or at <= before)
        ]  # fmt: skip
        for message, at in chosen:
            await (await self.outputs.send(message))
            stored.outbox.remove((message, at))
        return len(chosen)
