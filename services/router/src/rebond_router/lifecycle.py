"""The referral lifecycle: decide, follow each referral, move it on, publish what happened.

Entry points (the Kafka handlers, the deadline task) call these methods; each one writes its
state change and the events to publish in one store transaction (the outbox), then publishes
them, waiting for Kafka's acknowledgement, before returning. Handlers commit their offset only
after that, so the router is at least once and idempotent:

- a questionnaire whose decision (or reference) is already in the store decides nothing again,
  nor one whose reference was erased, nor does an answer about it (`rebond_router.privacy`);
- an answer is handled once per event id; an answer about a referral the association does not
  currently hold is `Rejected` (dead-lettered by the caller) and changes nothing;
- a deadline fires once: the row is claimed with SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL)
  and a conditional UPDATE on its version (every database).
"""

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID, uuid5

import structlog
from pydantic import BaseModel

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import (
    Answer,
    DeclineReason,
    QuestionnaireCompletedV1,
    Reason,
    ReferralResponseV1,
    ReferralStatus,
    ReferralStatusV1,
    ReferralV1,
    RoutingDecisionV1,
    ScoreBreakdown,
    TriedAssociation,
    UnroutedReferralV1,
)
from rebond_contracts.questionnaire import Need, Region, Stage
from rebond_contracts.topics import DECISIONS, INVITEES, OUTCOMES, REFERRAL_STATUS, UNROUTED, Topic
from rebond_contracts.tracing import HEADER as TRACE_HEADER
from rebond_observability import current_trace
from rebond_router.directory import Directory
from rebond_router.rules import (
    Routing,
    StoredCandidate,
    decide,
    invitee_of,
    outcome_of,
    reorient,
)
from rebond_router.store import OPEN, ConcurrentChange, Store, Tx, week_start

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


class Outputs(Protocol):
    """Where events go: Kafka in production, a list in unit tests.

    `send` returns once the record is handed to the producer, in call order (so records of
    one key stay in order); the awaitable it returns completes when Kafka acknowledged it
    (acks=all), or raises. Many sends are thus in flight together."""

    async def send(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str]
    ) -> Awaitable[object]: ...


#: Enters the log and trace context of the i-th event of a batch (the consumer's per record).
EventScope = Callable[[int], AbstractContextManager[object]]


class Rejected(ValueError):
    """A message that must not change anything (dead-lettered with this reason)."""


class Router:
    def __init__(
        self,
        store: Store,
        directory: Directory,
        outputs: Outputs,
        clock: Clock,
        decided: Callable[[RoutingDecisionV1], None] = lambda _decision: None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.outputs = outputs
        self.clock = clock
        #: Told of each decision once it is committed (with its outbox): the decisions metric.
        self.decided = decided
        # One flush at a time in this process: the questionnaire and the answer handlers run
        # concurrently, and must not publish the same pending output twice or out of order.
        self._flushing = asyncio.Lock()

    # --- questionnaires ------------------------------------------------------------------

    async def on_questionnaire(self, event: Envelope[QuestionnaireCompletedV1]) -> bool:
        """Decide once per reference; returns False when it was already decided."""
        return await self.on_questionnaires([event]) == 1

    async def on_questionnaires(
        self,
        events: Sequence[Envelope[QuestionnaireCompletedV1]],
        scope: EventScope | None = None,
    ) -> int:
        """Decide a batch: one transaction for all its decisions and outbox rows, then all its
        outputs published together. Each reference is decided once (a reference seen again,
        even within the batch, decides nothing); returns how many were decided now.

        Weekly loads are counted once per batch and kept up to date as offers are made, so the
        batch sees its own offers; another instance's concurrent offers are seen from its next
        batch on (capacity is a soft weekly limit, as with one record per transaction)."""
        now = self.clock()
        decided = 0
        references = [event.data.reference for event in events]
        async with self.store.transaction() as tx:
            seen, erased, loads = await tx.batch_start(references, week_start(now))
            for index, event in enumerate(events):
                with scope(index) if scope is not None else nullcontext():
                    submitted = event.data
                    if submitted.reference in seen:  # decided before, or earlier in this batch
                        continue
                    seen.add(submitted.reference)
                    if submitted.reference in erased:
                        log.info("not_routed", reason="erasure requested")
                        continue
                    routing = decide(event.id, submitted, now, self.directory, loads)
                    await self._record_first(tx, submitted, routing, event.correlationid, now)
                    if (referral := routing.decision.referral) is not None:
                        loads[referral.association_id] = loads.get(referral.association_id, 0) + 1
                    decided += 1
        await self.flush(references)
        return decided

    async def _record_first(
        self,
        tx: Tx,
        submitted: QuestionnaireCompletedV1,
        routing: Routing,
        correlation: str,
        now: datetime,
    ) -> None:
        decision = routing.decision
        referral = decision.referral
        candidates = [
            {
                "association": c.association.value,
                "score": c.score.model_dump(mode="json"),
                "reasons": [r.model_dump(mode="json") for r in c.reasons],
            }
            for c in routing.referral_candidates
        ]
        status = "offered" if referral else ("unrouted" if routing.unrouted else "not_shared")
        holder = self.directory.get(referral.association_id) if referral else None
        await tx.insert_referral(
            reference=decision.reference,
            decision_id=str(decision.decision_id),
            correlation_id=correlation,
            rule_set_version=decision.rule_set_version,
            urgent=decision.urgent,
            status=status,
            attempt=1,
            holder=referral.association_id.value if referral else None,
            referral_id=str(referral.referral_id) if referral else None,
            deadline=referral.respond_by if referral else None,
            remind_at=_remind_at(referral, holder.reminder_before if holder else None),
            reminded=False,
            candidates=candidates,
            scores=[s.model_dump(mode="json") for s in decision.scores],
            tried=[],
            template=referral.model_dump_json() if referral else None,
            updated_at=now,
        )
        out = _Batch(tx, decision.reference, correlation, now)
        await out.decision(decision)
        tx.on_commit(functools.partial(self.decided, decision))
        if referral:
            await tx.record_offer(
                str(referral.referral_id), decision.reference, referral.association_id.value, now
            )
            await out.status(
                ReferralStatus.OFFERED, referral.referral_id, referral.association_id,
                respond_by=referral.respond_by,
            )  # fmt: skip
        elif routing.unrouted:
            situation = submitted.questionnaire.situation
            await out.unrouted(
                decision_id=decision.decision_id,
                urgent=decision.urgent,
                stage=situation.stage,
                region=situation.region,
                needs=submitted.questionnaire.needs,
                cause="no_candidate",
                tried=[],
                rule_set_version=decision.rule_set_version,
            )
        log.info(
            "decided",
            association=decision.primary,
            referral=referral is not None,
            rule_set=decision.rule_set_version,
            status=status,
        )

    # --- answers -------------------------------------------------------------------------

    async def on_response(
        self, association: AssociationId, event: Envelope[ReferralResponseV1]
    ) -> None:
        """Accept or decline from `association` (the topic it wrote to). An answer about an
        erased reference changes nothing and is not an error: the association may have answered
        before it read the withdrawal."""
        answer = event.data
        now = self.clock()
        async with self.store.transaction() as tx:
            if await tx.erased(answer.reference):
                log.info("response_ignored", reason="erasure requested")
            elif await tx.already_handled(event.id):
                log.info("response_already_handled")
            else:
                row = await tx.referral(answer.reference, lock=True)
                _check_held(row, association, answer)
                assert row is not None
                out = _Batch(tx, row["reference"], row["correlation_id"], now)
                referral_id = UUID(row["referral_id"])
                if answer.answer is Answer.ACCEPT:
                    await tx.update_referral(row, status="accepted", template=None, updated_at=now)
                    await out.status(ReferralStatus.ACCEPTED, referral_id, association)
                else:
                    reason = answer.reason or DeclineReason.OTHER
                    await out.status(
                        ReferralStatus.DECLINED, referral_id, association, reason=reason
                    )
                    await self._move_on(tx, out, row, ReferralStatus.DECLINED, reason)
                await tx.mark_handled(event.id, now)
                log.info("answered", association=association, answer=answer.answer)
        await self.flush([answer.reference])

    # --- deadlines -----------------------------------------------------------------------

    async def check_deadlines(self, limit: int = 100) -> int:
        """Send due reminders and expire overdue referrals; returns how many fired here."""
        now = self.clock()
        fired: list[str] = []
        async with self.store.transaction() as tx:
            due = await tx.due(now, limit)
            reminders = await tx.reminders_due(now, limit)
        for reference in due:
            if await self._claimed(self._expire(reference, now)):
                fired.append(reference)
        for reference in reminders:
            if await self._claimed(self._remind(reference, now)):
                fired.append(reference)
        if fired:
            await self.flush(list(dict.fromkeys(fired)))
        return len(fired)

    @staticmethod
    async def _claimed(step: Awaitable[bool]) -> bool:
        """False when another instance claimed the row first (its transaction rolled back)."""
        try:
            return await step
        except ConcurrentChange:
            return False

    async def _expire(self, reference: str, now: datetime) -> bool:
        async with self.store.transaction() as tx:
            row = await tx.referral(reference, lock=True)
            if row is None or row["status"] not in OPEN or row["deadline"] > now:
                return False  # another instance got there first, or the holder answered
            await tx.update_referral(row, updated_at=now)  # the claim: fails if taken meanwhile
            row = {**row, "version": row["version"] + 1}
            out = _Batch(tx, reference, row["correlation_id"], now)
            holder = AssociationId(row["holder"])
            await out.status(ReferralStatus.EXPIRED, UUID(row["referral_id"]), holder)
            await self._move_on(tx, out, row, ReferralStatus.EXPIRED, None)
            log.info("expired", association=holder, reference=reference)
            return True

    async def _remind(self, reference: str, now: datetime) -> bool:
        async with self.store.transaction() as tx:
            row = await tx.referral(reference, lock=True)
            if row is None or row["status"] != "offered" or row["reminded"]:
                return False
            await tx.update_referral(row, status="reminded", reminded=True, updated_at=now)
            out = _Batch(tx, reference, row["correlation_id"], now)
            await out.status(
                ReferralStatus.REMINDED, UUID(row["referral_id"]), AssociationId(row["holder"]),
                respond_by=row["deadline"],
            )  # fmt: skip
            log.info("reminded", association=row["holder"], reference=reference)
            return True

    # --- moving a referral on ------------------------------------------------------------

    async def _move_on(
        self,
        tx: Tx,
        out: "_Batch",
        row: Mapping[str, Any],
        outcome: ReferralStatus,
        reason: DeclineReason | None,
    ) -> None:
        """The holder declined or stayed silent: offer the next alternate, else the human queue."""
        holder = AssociationId(row["holder"])
        tried = [
            *row["tried"],
            TriedAssociation(
                association_id=holder, referral_id=UUID(row["referral_id"]),
                outcome=outcome, reason=reason,
            ).model_dump(mode="json"),
        ]  # fmt: skip
        remaining = [
            c for c in row["candidates"][1:] if self._still_open(AssociationId(c["association"]))
        ]
        template = ReferralV1.model_validate_json(row["template"])
        if remaining:
            attempt = row["attempt"] + 1
            stored = [_stored(c) for c in remaining]
            decision = reorient(
                first_decision_id=UUID(row["decision_id"]),
                attempt=attempt,
                template=template,
                remaining=stored,
                scores=[ScoreBreakdown.model_validate(s) for s in row["scores"]],
                rule_set_version=row["rule_set_version"],
                urgent=row["urgent"],
                now=out.now,
                directory=self.directory,
            )
            referral = decision.referral
            assert referral is not None and referral.respond_by is not None
            next_holder = referral.association_id
            await tx.update_referral(
                row,
                status="offered",
                attempt=attempt,
                holder=next_holder.value,
                referral_id=str(referral.referral_id),
                deadline=referral.respond_by,
                remind_at=_remind_at(referral, self.directory.get(next_holder).reminder_before),
                reminded=False,
                candidates=remaining,
                tried=tried,
                updated_at=out.now,
            )
            await tx.record_offer(str(referral.referral_id), row["reference"], next_holder, out.now)
            await out.status(
                ReferralStatus.REORIENTED, UUID(row["referral_id"]), holder,
                next_association_id=next_holder,
            )  # fmt: skip
            await out.decision(decision)
            tx.on_commit(functools.partial(self.decided, decision))
            await out.status(
                ReferralStatus.OFFERED, referral.referral_id, next_holder,
                respond_by=referral.respond_by,
            )  # fmt: skip
            log.info("reoriented", association=next_holder, attempt=attempt)
        else:
            await tx.update_referral(
                row, status="unrouted", holder=None, candidates=[], tried=tried, updated_at=out.now
            )
            await out.status(ReferralStatus.UNROUTED, UUID(row["referral_id"]), holder)
            await out.unrouted(
                decision_id=UUID(row["decision_id"]),
                urgent=template.urgent,
                stage=template.stage,
                region=template.region,
                needs=template.needs,
                cause="all_declined_or_expired",
                tried=tried,
                rule_set_version=row["rule_set_version"],
            )
            log.info("unrouted", tried=len(tried))

    def _still_open(self, association: AssociationId) -> bool:
        try:
            return not self.directory.get(association).paused
        except KeyError:
            return False

    # --- publishing ----------------------------------------------------------------------

    async def flush(
        self, references: Sequence[str] | None = None, older_than: timedelta | None = None
    ) -> int:
        """Publish the pending outputs (of `references`, or all; or only those older than
        `older_than`): handed to the producer in outbox order, all in flight together, each
        dropped from the outbox once Kafka acknowledged it. Raises the first failure after
        dropping what did go out; the rest is published by the next flush (same event ids)."""
        before = self.clock() - older_than if older_than is not None else None
        async with self._flushing:
            pending = await self.store.pending_outputs(references, before)
            acks = [await self.outputs.send(r.topic, r.key, r.value, r.headers) for r in pending]
            results = await asyncio.gather(*acks, return_exceptions=True)
            await self.store.forget_outputs(
                [r.id for r, result in zip(pending, results, strict=True)
                 if not isinstance(result, BaseException)]
            )  # fmt: skip
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return len(pending)


def _check_held(
    row: Mapping[str, Any] | None, association: AssociationId, answer: ReferralResponseV1
) -> None:
    if row is None:
        raise Rejected(f"no referral {answer.reference} is known (or it is being handled)")
    if row["holder"] != association.value or row["referral_id"] != str(answer.referral_id):
        raise Rejected(
            f"{association.value} does not hold referral {answer.referral_id} of {answer.reference}"
        )
    if row["status"] not in OPEN:
        raise Rejected(f"referral {answer.referral_id} is already {row['status']}")
    if answer.answer is Answer.ACCEPT and answer.reason is not None:
        raise Rejected("an acceptance carries no decline reason")


def _remind_at(referral: ReferralV1 | None, before: timedelta | None) -> datetime | None:
    if referral is None or referral.respond_by is None or before is None:
        return None
    return referral.respond_by - before


def _stored(candidate: Mapping[str, Any]) -> StoredCandidate:
    return StoredCandidate(
        association=AssociationId(candidate["association"]),
        score=ScoreBreakdown.model_validate(candidate["score"]),
        reasons=tuple(Reason.model_validate(r) for r in candidate["reasons"]),
    )


class _Batch:
    """Events written to the outbox in one transaction, with deterministic event ids."""

    def __init__(self, tx: Tx, reference: str, correlation: str, now: datetime) -> None:
        self.tx, self.reference, self.correlation, self.now = tx, reference, correlation, now

    async def add(self, topic: Topic, payload: BaseModel, event_id: UUID) -> None:
        env = topic.envelope(
            payload, subject=self.reference, correlationid=self.correlation, id=str(event_id)
        )
        headers = env.kafka_headers()
        if (trace := current_trace()) is not None:  # the record being handled, kept in the outbox
            headers[TRACE_HEADER] = trace.header()
        await self.tx.add_output(
            self.reference, topic.name, self.reference, env.kafka_value(), headers, self.now
        )

    async def decision(self, decision: RoutingDecisionV1) -> None:
        """A decision for the notifier, and what of it intake (the outcome) and events (the
        invitee, if the person consented to invitations) may know, on topics of their own: in
        the same outbox transaction, so that none goes out without the others."""
        await self.add(DECISIONS, decision, decision.decision_id)
        await self.add(OUTCOMES, outcome_of(decision), uuid5(decision.decision_id, "outcome"))
        if (invitee := invitee_of(decision)) is not None:
            await self.add(INVITEES, invitee, uuid5(decision.decision_id, "invitee"))

    async def status(
        self,
        status: ReferralStatus,
        referral_id: UUID,
        association: AssociationId,
        *,
        reason: DeclineReason | None = None,
        next_association_id: AssociationId | None = None,
        respond_by: datetime | None = None,
    ) -> None:
        payload = ReferralStatusV1(
            reference=self.reference,
            referral_id=referral_id,
            association_id=association,
            status=status,
            reason=reason,
            next_association_id=next_association_id,
            respond_by=respond_by,
            at=self.now,
        )
        await self.add(REFERRAL_STATUS, payload, uuid5(referral_id, status.value))

    async def unrouted(
        self,
        *,
        decision_id: UUID,
        urgent: bool,
        stage: Stage,
        region: Region,
        needs: list[Need],
        cause: str,
        tried: Sequence[Mapping[str, Any]],
        rule_set_version: str,
    ) -> None:
        """The human queue: a person who consented to be contacted and whom nobody holds."""
        payload = UnroutedReferralV1(
            reference=self.reference,
            urgent=urgent,
            stage=stage,
            region=region,
            needs=needs,
            cause=cause,
            tried=[TriedAssociation.model_validate(t) for t in tried],
            rule_set_version=rule_set_version,
            at=self.now,
        )
        await self.add(UNROUTED, payload, uuid5(decision_id, "unrouted"))
