"""The router's use cases: decide, follow each referral, move it on, forget it on erasure.

Each use case loads referrals through the `ReferralRepository` port, applies a command of the
`Referral` aggregate (`rebond_router.referral`) and saves the new value **with the events to
publish in the same transaction** (the outbox); once committed, the `Publisher` port publishes
them, waiting for Kafka's acknowledgements, before the use case returns. Handlers commit their
offset only after that, so the router is at least once and idempotent:

- a questionnaire whose reference is already known decides nothing again, nor one whose
  reference was erased, nor does an answer about it (the tombstone is read in the transaction
  of the effect, under the reference's lock: `rebond_router.store`);
- an answer (an association's accept or decline, its outcome, the person's follow-up answer)
  is handled once per event id; one the aggregate refuses is `Rejected` (dead-lettered by the
  caller) and changes nothing;
- a deadline fires once: the referral is read with a row lock that skips rows another instance
  holds (PostgreSQL) and saved only if its version is still the one read (every database).

The SQL repository is `rebond_router.store.Store`; the tests' fake keeps everything in memory.
"""

import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

import structlog

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import (
    CaseAssignedV1,
    CaseClosedV1,
    FollowUpAnsweredV1,
    QuestionnaireCompletedV1,
    ReferralOutcomeV1,
    ReferralResponseV1,
    RoutingDecisionV1,
)
from rebond_contracts.tracing import HEADER as TRACE_HEADER
from rebond_observability import current_trace
from rebond_router import statistics
from rebond_router.directory import Directory
from rebond_router.referral import (
    FOLLOW_UP_AFTER,
    Key,
    Offer,
    Referral,
    Rejected,
    State,
    Transition,
    week_start,
)
from rebond_router.rules import Track, decide, decide_distress
from rebond_router.scoring import full_now
from rebond_sql.outbox import Message
from rebond_sql.types import Clock

log = structlog.get_logger(__name__)

#: Enters the log and trace context of the i-th event of a batch (the consumer's per record).
EventScope = Callable[[int], AbstractContextManager[object]]
#: A command of the aggregate, its arguments given: `lambda r: r.remind(now)`.
Command = Callable[[Referral], Transition]


class ConcurrentChange(RuntimeError):
    """Another instance changed the referral first; the caller retries (transient)."""


@dataclass
class BatchStart:
    """What a batch of questionnaires reads before deciding, once it holds their references'
    locks: those decided before, those erased, and this week's offers per association."""

    known: set[str]
    erased: set[str]
    week_offers: dict[AssociationId, int]


class ReferralTransaction(Protocol):
    """One transaction on the referrals: what it reads sees what it wrote."""

    async def start_batch(self, references: Sequence[str], week: datetime) -> BatchStart: ...

    async def offered_in_week(self, week: datetime) -> dict[AssociationId, int]:
        """Offers made to each association in the week starting at `week` (`week_start`)."""
        ...

    async def erased(self, reference: str) -> bool:
        """Whether `reference` was erased, read once this transaction holds its lock."""
        ...

    async def referrals(self, reference: str, *, lock: bool = False) -> list[Referral]:
        """Every referral of `reference`; `lock` skips (leaves out) those another transaction
        holds."""
        ...

    async def referral(self, key: Key, *, lock: bool = False) -> Referral | None: ...

    async def add(
        self, referral: Referral, offer: Offer | None, messages: Sequence[Message], at: datetime
    ) -> None:
        """A new referral, the offer it made and its events, in this transaction."""
        ...

    async def save(
        self, referral: Referral, offer: Offer | None, messages: Sequence[Message], at: datetime
    ) -> None:
        """The referral's new value, if its stored version is still `referral.version` (else
        `ConcurrentChange`), with the offer it made and its events."""
        ...

    async def handled(self, event_id: str) -> bool: ...

    async def mark_handled(self, event_id: str, at: datetime) -> None: ...

    async def due(self, now: datetime, limit: int) -> list[Key]:
        """Open referrals whose deadline has passed (those locked elsewhere skipped)."""
        ...

    async def reminders_due(self, now: datetime, limit: int) -> list[Key]: ...

    async def follow_ups_due(self, now: datetime, limit: int) -> list[Key]:
        """Accepted referrals whose follow-up time has come (those locked elsewhere skipped)."""
        ...

    async def erase(self, reference: str, at: datetime) -> bool:
        """Take `reference`'s exclusive lock (an effect on it under way is waited for, and any
        later one waits for this commit) and keep its tombstone; False if it was there before."""
        ...

    async def forget(self, reference: str, messages: Sequence[Message], at: datetime) -> None:
        """Delete every referral of `reference`, its offers and its unpublished events, then
        write `messages` (what withdrawing them publishes)."""
        ...

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the transaction has committed (never if it rolls back)."""
        ...


class ReferralRepository(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[ReferralTransaction]: ...


class Publisher(Protocol):
    """Publishes the outbox (`rebond_sql.outbox.Relay` in production)."""

    async def flush(
        self, subjects: Sequence[str] | None = None, older_than: timedelta | None = None
    ) -> int: ...


class Router:
    def __init__(
        self,
        referrals: ReferralRepository,
        publisher: Publisher,
        directory: Directory,
        clock: Clock,
        decided: Callable[[RoutingDecisionV1], None] = lambda _decision: None,
        follow_up_after: timedelta = FOLLOW_UP_AFTER,
    ) -> None:
        self.referrals = referrals
        self.publisher = publisher
        self.directory = directory
        self.clock = clock
        #: Told of each decision once it is committed (with its outbox): the decisions metric.
        self.decided = decided
        #: How long after an acceptance the person is asked whether they were contacted.
        self.follow_up_after = follow_up_after

    # --- questionnaires ------------------------------------------------------------------

    async def on_questionnaire(self, event: Envelope[QuestionnaireCompletedV1]) -> bool:
        """Decide once per reference; returns False when it was already decided."""
        return await self.on_questionnaires([event]) == 1

    async def on_questionnaires(
        self,
        events: Sequence[Envelope[QuestionnaireCompletedV1]],
        scope: EventScope | None = None,
    ) -> int:
        """Decide a batch: one transaction for all its referrals and events, then all its
        events published together. Each reference is decided once (a reference seen again,
        even within the batch, decides nothing), on the main track and, for a person in
        distress who consented (`decide_distress`), on the distress track beside it, in the
        same transaction; returns how many references were decided now.

        Weekly loads are read once per batch and kept up to date as offers are made, so the
        batch sees its own offers; another instance's concurrent offers are seen from its next
        batch on (capacity is a soft weekly limit, as with one record per transaction)."""
        now = self.clock()
        decided = 0
        references = [event.data.reference for event in events]
        async with self.referrals.transaction() as tx:
            start = await tx.start_batch(references, week_start(now))
            loads = start.week_offers
            for index, event in enumerate(events):
                with scope(index) if scope is not None else nullcontext():
                    submitted = event.data
                    if submitted.reference in start.known:  # before, or earlier in this batch
                        continue
                    start.known.add(submitted.reference)
                    if submitted.reference in start.erased:
                        log.info("not_routed", reason="erasure requested")
                        continue
                    routing = decide(event.id, submitted, now, self.directory, loads)
                    distress = decide_distress(
                        routing.decision.decision_id, submitted, now, self.directory, loads
                    )
                    for track in (routing, distress):
                        if track is None:
                            continue
                        done = Referral.offer(
                            track, submitted, event.correlationid, now, self.directory
                        )
                        await tx.add(done.referral, done.offer, outbox_messages(done), now)
                        self._tell_decided(tx, done)
                        if done.offer is not None:
                            association = done.offer.association
                            loads[association] = loads.get(association, 0) + 1
                        log.info(
                            "decided",
                            association=track.decision.primary,
                            referral=done.offer is not None,
                            rule_set=track.decision.rule_set_version,
                            status=done.referral.state,
                            track=done.referral.track,
                        )
                    decided += 1
        await self.publisher.flush(references)
        return decided

    # --- answers -------------------------------------------------------------------------

    async def on_response(
        self, association: AssociationId, event: Envelope[ReferralResponseV1]
    ) -> None:
        """Accept or decline from `association` (the topic it wrote to). An answer about an
        erased reference changes nothing and is not an error: the association may have answered
        before it read the withdrawal."""
        response = event.data
        now = self.clock()
        async with self.referrals.transaction() as tx:
            if await tx.erased(response.reference):
                log.info("response_ignored", reason="erasure requested")
            elif await tx.handled(event.id):
                log.info("response_already_handled")
            else:
                referral = _answered(await tx.referrals(response.reference, lock=True), response)
                loads = await tx.offered_in_week(week_start(now))
                done = referral.answer(
                    association, response, now, self.directory, self.follow_up_after,
                    full=full_now(self.directory, loads),
                )  # fmt: skip
                await tx.save(done.referral, done.offer, outbox_messages(done, referral), now)
                self._tell_decided(tx, done)
                await tx.mark_handled(event.id, now)
                log.info("answered", association=association, answer=response.answer)
        await self.publisher.flush([response.reference])

    async def on_outcome(
        self, association: AssociationId, event: Envelope[ReferralOutcomeV1]
    ) -> None:
        """What happened after `association` accepted: recorded on the referral it names (a
        contact reported spares the person the follow-up)."""
        outcome = event.data
        await self._once(
            event, lambda r: r.record_outcome(association, outcome, self.clock()), "outcome"
        )

    async def on_follow_up(self, event: Envelope[FollowUpAnsweredV1]) -> None:
        """The person's answer to the follow-up: "no" puts the case in the human queue."""
        answer = event.data
        await self._once(event, lambda r: r.answer_follow_up(answer, self.clock()), "follow_up")

    async def _once(
        self,
        event: Envelope[ReferralOutcomeV1] | Envelope[FollowUpAnsweredV1],
        command: Command,
        what: str,
    ) -> None:
        """`command` on the referral `event` names, once per event id, unless the reference
        was erased (then nothing happens, and that is no error), in one transaction."""
        data = event.data
        now = self.clock()
        async with self.referrals.transaction() as tx:
            if await tx.erased(data.reference):
                log.info(f"{what}_ignored", reason="erasure requested")
            elif await tx.handled(event.id):
                log.info(f"{what}_already_handled")
            else:
                referrals = await tx.referrals(data.reference, lock=True)
                referral = _holding(referrals, data.reference, data.referral_id)
                done = command(referral)
                await tx.save(done.referral, done.offer, outbox_messages(done, referral), now)
                await tx.mark_handled(event.id, now)
                log.info(what, state=done.referral.state, track=done.referral.track)
        await self.publisher.flush([data.reference])

    # --- deadlines -----------------------------------------------------------------------

    async def check_deadlines(self, limit: int = 100) -> int:
        """Send due reminders and follow-ups and expire overdue referrals; returns how many
        fired here."""
        now = self.clock()
        async with self.referrals.transaction() as tx:
            due = await tx.due(now, limit)
            reminders = await tx.reminders_due(now, limit)
            follow_ups = await tx.follow_ups_due(now, limit)
            # This week's offers, kept up to date as expiries move referrals on: an expired
            # referral goes to an association with room (another instance's offers meanwhile
            # are seen from the next sweep on, as in a batch of questionnaires). Read only when
            # something expires: most sweeps find nothing due.
            loads = await tx.offered_in_week(week_start(now)) if due else {}
        fired: list[str] = []
        for key in due:
            done = await self._fires(key, self._expire(now, loads), "expired")
            if done is not None:
                fired.append(key.reference)
                if done.offer is not None:
                    loads[done.offer.association] = loads.get(done.offer.association, 0) + 1
        for key in reminders:
            if await self._fires(key, lambda r: r.remind(now), "reminded") is not None:
                fired.append(key.reference)
        for key in follow_ups:
            if await self._fires(key, lambda r: r.follow_up(now), "follow_up_due") is not None:
                fired.append(key.reference)
        if fired:
            await self.publisher.flush(list(dict.fromkeys(fired)))
        return len(fired)

    def _expire(self, now: datetime, loads: dict[AssociationId, int]) -> Command:
        """Expire, moving on to an association with room as `loads` stand now."""
        full = full_now(self.directory, loads)
        return lambda referral: referral.expire(now, self.directory, full=full)

    async def _fires(self, key: Key, command: Command, what: str) -> Transition | None:
        """None when another instance claimed the referral first (locked, or saved meanwhile:
        this transaction rolls back) or the holder answered since it was found due."""
        try:
            done = await self._apply(key, command)
        except (Rejected, ConcurrentChange):
            return None
        log.info(what, association=done.referral.holder, reference=key.reference)
        return done

    # --- any command on one referral -------------------------------------------------------

    async def apply(self, key: Key, command: Command) -> Transition:
        """Load the referral at `key`, apply `command`, save the result with its events, then
        publish them. Raises `Rejected` (nothing changed) or `ConcurrentChange` (another
        instance changed the referral first)."""
        done = await self._apply(key, command)
        await self.publisher.flush([key.reference])
        return done

    async def _apply(self, key: Key, command: Command) -> Transition:
        now = self.clock()
        async with self.referrals.transaction() as tx:
            referral = await tx.referral(key, lock=True)
            if referral is None:
                raise Rejected(f"no referral {key.reference} is known (or it is being handled)")
            done = command(referral)
            await tx.save(done.referral, done.offer, outbox_messages(done, referral), now)
            self._tell_decided(tx, done)
        return done

    # --- the human queue, worked by the grouping's coordinators ---------------------------

    async def on_assignment(self, assigned: CaseAssignedV1) -> None:
        """A coordinator assigns a queued case: a manual decision offers it to the association
        they chose, with the effective deadline (`Referral.assign`), on the track of the
        association's kind (a distress association takes the distress track, any other the
        main track: the assignment names no track, and `Referral.assign` refuses the other)."""
        try:
            distress = self.directory.get(assigned.association_id).distress_only
        except KeyError:
            distress = False  # `Referral.assign` says it is not in the directory
        await self._on_queued_case(
            assigned.reference,
            f"assignment/{assigned.assignment_id}",
            lambda r, now: r.assign(assigned.association_id, assigned.note, now, self.directory),
            Track.DISTRESS if distress else Track.MAIN,
        )
        log.info("assigned", association=assigned.association_id)

    async def on_closure(self, closed: CaseClosedV1) -> None:
        """A coordinator closes a queued case without an association (`Referral.close`): every
        track of it in the human queue, as the closure names the case, not a track."""
        await self._on_queued_case(
            closed.reference, f"closure/{closed.closure_id}", lambda r, now: r.close(now)
        )
        log.info("case_closed")

    async def _on_queued_case(
        self,
        reference: str,
        once: str,
        command: Callable[[Referral, datetime], Transition],
        track: Track | None = None,
    ) -> None:
        """Apply `command` to the queued referral of `reference` on `track` (every queued one
        if None), once per `once` (the assignment's or closure's id, kept with the answers'
        event ids: a redelivery changes nothing). `Rejected`, for the caller to dead-letter
        with its reason: an erased reference (the person withdrew), an unknown one, or one
        with nothing in the human queue (on that track)."""
        now = self.clock()
        async with self.referrals.transaction() as tx:
            if await tx.erased(reference):
                raise Rejected(f"case {reference} was erased: the person withdrew")
            if await tx.handled(once):
                log.info("case_already_handled")
                return
            referrals = await tx.referrals(reference, lock=True)
            if not referrals:
                raise Rejected(f"no case {reference} is known (or it is being handled)")
            queued = [r for r in referrals if r.state is State.UNROUTED]
            on_track = [r for r in queued if track is None or r.track is track]
            # Nothing fits: the command refuses another queued track, else any, saying why.
            for referral in on_track or queued[:1] or referrals[:1]:
                done = command(referral, now)
                await tx.save(done.referral, done.offer, outbox_messages(done, referral), now)
                self._tell_decided(tx, done)
            await tx.mark_handled(once, now)
        await self.publisher.flush([reference])

    # --- erasure -------------------------------------------------------------------------

    async def on_erasure(self, reference: str) -> bool:
        """The person withdrew: each referral of `reference` is withdrawn (no reminder, expiry
        or re-orientation follows; a late answer finds nothing to answer) and forgotten, and
        only the tombstone stays. False when it was erased before (the deletion runs again:
        it is idempotent)."""
        now = self.clock()
        async with self.referrals.transaction() as tx:
            new = await tx.erase(reference, now)
            withdrawn = [r.withdraw(now) for r in await tx.referrals(reference)]
            await tx.forget(
                reference, [m for done in withdrawn for m in outbox_messages(done)], now
            )
        log.info("referral_erased" if new else "erasure_repeated")
        await self.publisher.flush([reference])
        return new

    def _tell_decided(self, tx: ReferralTransaction, done: Transition) -> None:
        for decision in done.decisions:
            tx.on_commit(functools.partial(self.decided, decision))


def _answered(referrals: Sequence[Referral], response: ReferralResponseV1) -> Referral:
    """The referral an answer is about: the one whose current offer it names, else (so that
    the refusal names the holder) the first."""
    for referral in referrals:
        if referral.referral_id == response.referral_id:
            return referral
    if not referrals:
        raise Rejected(f"no referral {response.reference} is known (or it is being handled)")
    return referrals[0]


def _holding(referrals: Sequence[Referral], reference: str, referral_id: UUID) -> Referral:
    """The referral whose (accepted) offer is `referral_id`: an outcome or a follow-up answer
    is about one track's referral, and refused when it names none of them."""
    for referral in referrals:
        if referral.referral_id == referral_id:
            return referral
    raise Rejected(f"no referral {referral_id} of {reference} is known (or it is being handled)")


def outbox_messages(done: Transition, before: Referral | None = None) -> list[Message]:
    """The transition's events as outbox messages: enveloped (CloudEvents, the referral's
    correlation id), keyed by the reference, and carrying the trace of the record being handled
    (kept in the outbox, so that a later flush continues it); then its anonymous statistics
    facts (`statistics.facts`, from the referral `before` it), keyed by association and named by
    their own id, never by the reference (only the outbox row knows it, to publish them with the
    rest)."""
    referral = done.referral
    trace = current_trace()
    messages = []
    # (event, its CloudEvents subject and correlation id, its Kafka key)
    named = [
        (e, referral.reference, referral.correlation_id, referral.reference) for e in done.events
    ]
    named += [
        (fact, str(fact.id), str(fact.id), key) for fact, key in statistics.facts(before, done)
    ]
    for event, subject, correlation_id, key in named:
        envelope = event.topic.envelope(
            event.payload, subject=subject, correlationid=correlation_id, id=str(event.id)
        )
        headers = envelope.kafka_headers()
        if trace is not None:
            headers[TRACE_HEADER] = trace.header()
        messages.append(
            Message(
                topic=event.topic.name,
                key=key,
                value=envelope.kafka_value(),
                headers=headers,
                subject=referral.reference,
            )
        )
    return messages
