"""The console on Kafka: what it publishes (`KafkaOutbound`) and what it reads (`subscribe_facts`).

Publishing, through an idempotent producer that waits for every in-sync replica (acks=all):
an answer given in the inbox goes to `responses.<association_id>` as the notifier's e-mail
links publish it, and an outcome there too as its second kind (`rebond_contracts.answers`: the
same event, the same id, whoever gives it); an assignment or a closure of a queue case goes to
`coordination.assignments` (key: reference), an override of the directory to
`directory.overrides` (key: association id). A message the broker did not acknowledge raises
`OutboundUnavailable`, so it stays in the outbox and the relay sends it again; its stable event
id (`outbound_event`) lets the router drop a repeat.

Reading: one subscriber (group `rebond-coordination[.<name>]`) of the human queue, every
association's referrals, the referrals' statuses, the follow-ups, the router's anonymous
statistics facts, events' peer matches (`proposed` steps, counted with the person's consent),
the router's applied overrides and the erasures turns each event into a fact of `facts.py` and
applies it with `projections.py`. Each projection is idempotent, and the offset is committed
only after it returned (`rebond_kafka.consume.subscribe`), so at-least-once delivery leaves the store as one
delivery would. A record the contract refuses is dead-lettered.
"""

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any

import structlog
from aiokafka.errors import KafkaError
from faststream.exceptions import FastStreamException
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from rebond_contracts.answers import answer_event, outcome_event
from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import (
    CaseAssignedV1,
    CaseClosedV1,
    CaseFactV1,
    DirectoryAppliedV1,
    DirectoryOverrideV1,
    ErasureRequestedV1,
    FollowUpAnsweredV1,
    OutcomeKind,
    PeerMatchStatus,
    PeerMatchV1,
    ReferralOutcomeV1,
    ReferralResponseV1,
    ReferralStatusV1,
    ReferralV1,
    ReferralWithdrawnV1,
    UnroutedReferralV1,
)
from rebond_contracts.questionnaire import Contact
from rebond_contracts.topics import (
    APPLIED,
    ASSIGNMENTS,
    ERASURES,
    FOLLOW_UPS,
    OVERRIDES,
    PEER_MATCHES,
    REFERRAL_STATUS,
    STATISTICS,
    UNROUTED,
    Topic,
    referrals,
    responses,
)
from rebond_coordination import projections
from rebond_coordination.domain import Cause, Outcome
from rebond_coordination.facts import (
    CallbackContact,
    CaseQueued,
    EffectiveValues,
    FollowUpAnswered,
    OverrideApplied,
    ReferralOffered,
    StatisticsFact,
    StatusChanged,
    TriedAssociation,
    Withdrawn,
)
from rebond_coordination.ports import (
    AnswerGiven,
    CaseAssigned,
    CaseClosed,
    DirectoryOverride,
    OutboundMessage,
    OutboundUnavailable,
    OutcomeRecorded,
)
from rebond_coordination.settings import CoordinationSettings
from rebond_coordination.store import Store
from rebond_kafka.brokers import durable_broker
from rebond_kafka.consume import DeadLetters, Received, RecordScope, no_scope, subscribe
from rebond_kafka.security import kafka_security

log = structlog.get_logger(__name__)

#: The console's outcomes as the contract names them.
_OUTCOMES = {
    Outcome.CONTACTED: OutcomeKind.CONTACTED,
    Outcome.ACCOMPANIMENT_STARTED: OutcomeKind.ACCOMPANIMENT_STARTED,
    Outcome.REDIRECTED: OutcomeKind.REDIRECTED,
    Outcome.UNREACHABLE: OutcomeKind.UNREACHABLE,
    Outcome.CLOSED: OutcomeKind.CLOSED,
}

#: The router's causes of a queued case, as the console names them (a cause it does not know
#: yet is shown as "no association matches", the widest).
_CAUSES = {
    "no_candidate": Cause.UNROUTED,
    "no_capacity": Cause.NO_CAPACITY,
    "all_declined_or_expired": Cause.ALL_DECLINED,
    "expired": Cause.EXPIRED,
    "follow_up_not_contacted": Cause.NOT_CONTACTED,
    "not_contacted": Cause.NOT_CONTACTED,
}


def build_broker(settings: CoordinationSettings) -> KafkaBroker:
    """One client for both directions, durable (`durable_broker`: acks=all and idempotent),
    so an acknowledged answer is on Kafka for good and a retried one is written once."""
    return durable_broker(
        settings.kafka_bootstrap_servers,
        "rebond-coordination",
        security=kafka_security(settings),
        request_timeout_ms=10_000,
    )


class KafkaOutbound:
    """`ports.Outbound` on Kafka. `connected` says whether the broker is started and reachable:
    while it is not, a message is refused at once instead of waiting in the producer."""

    def __init__(self, broker: KafkaBroker, connected: Callable[[], bool]) -> None:
        self._connected = connected
        declared = [
            (ASSIGNMENTS, CaseAssignedV1, "A coordinator assigns or closes a case of the queue."),
            (OVERRIDES, DirectoryOverrideV1, "A coordinator's live change of the directory."),
            *(
                (responses(a), ReferralResponseV1, "An answer or an outcome given in the inbox, "
                 "on the association's behalf.")
                for a in AssociationId
            ),
        ]  # fmt: skip
        self._publishers = {
            topic.name: broker.publisher(
                topic.name, title=topic.name, description=description, schema=schema
            )
            for topic, schema, description in declared
        }

    async def publish(self, message: OutboundMessage) -> None:
        if not self._connected():
            raise OutboundUnavailable("Kafka n'est pas joignable pour l'instant")
        topic, event = outbound_event(message)
        try:
            await self._publishers[topic.name].publish(
                event.kafka_value(), key=event.subject.encode(), headers=event.kafka_headers(),
                correlation_id=event.correlationid,
            )  # fmt: skip
        except (KafkaError, OSError, TimeoutError, FastStreamException) as error:
            raise OutboundUnavailable(
                f"Kafka n'a pas accusé réception ({type(error).__name__})"
            ) from error


def outbound_event(message: OutboundMessage) -> tuple[Topic, Envelope[Any]]:
    """The topic and event of an outbox message. Every event's id is stable across retries
    (the message's id, or for answers and outcomes the id any delegate gives them), so a
    message sent again after a crash is one event to the router. Staff appear by account id
    only (`assigned_by`, `closed_by`, `set_by`): a pseudonym the router cannot turn into a
    name or an e-mail."""
    match message:
        case AnswerGiven():
            association = AssociationId(message.association_id)
            response = ReferralResponseV1(
                referral_id=uuid.UUID(message.referral_id), reference=message.reference,
                answer=message.answer, reason=message.reason, answered_at=message.at,
                call_by=message.call_by, caller=message.caller,
            )  # fmt: skip
            return responses(association), answer_event(association, response)
        case OutcomeRecorded():
            association = AssociationId(message.association_id)
            outcome = ReferralOutcomeV1(
                referral_id=uuid.UUID(message.referral_id), reference=message.reference,
                outcome=_OUTCOMES[Outcome(message.outcome)], on=message.on,
                recorded_at=message.at,
            )  # fmt: skip
            return responses(association), outcome_event(association, outcome)
        case CaseAssigned():
            assigned = CaseAssignedV1(
                assignment_id=uuid.UUID(message.message_id), reference=message.reference,
                association_id=AssociationId(message.association_id), note=message.note,
                assigned_by=message.coordinator_id, assigned_at=message.at,
            )  # fmt: skip
            return ASSIGNMENTS, _event(ASSIGNMENTS, assigned, message.reference, message)
        case CaseClosed():
            closed = CaseClosedV1(
                closure_id=uuid.UUID(message.message_id), reference=message.reference,
                outcome=message.outcome, closed_by=message.coordinator_id, closed_at=message.at,
            )  # fmt: skip
            return ASSIGNMENTS, _event(ASSIGNMENTS, closed, message.reference, message)
        case DirectoryOverride():
            override = DirectoryOverrideV1(
                override_id=uuid.UUID(message.message_id),
                association_id=AssociationId(message.association_id), paused=message.paused,
                weekly_capacity=message.weekly_capacity,
                response_deadline_days=message.response_deadline_days, set_by=message.set_by,
                set_at=message.at,
            )  # fmt: skip
            # Keyed by association: the router keeps the latest it reads for each one.
            return OVERRIDES, _event(OVERRIDES, override, message.association_id, message)


def _event(topic: Topic, data: BaseModel, key: str, message: OutboundMessage) -> Envelope[Any]:
    return topic.envelope(data, subject=key, correlationid=key, id=message.message_id)


def case_queued(event: UnroutedReferralV1) -> CaseQueued:
    """The human queue's case, with the call-back contact only when the person shared it."""
    return CaseQueued(
        reference=event.reference, urgent=event.urgent, stage=event.stage, region=event.region,
        department=event.department, needs=event.needs,
        cause=_CAUSES.get(event.cause, Cause.UNROUTED),
        tried=[
            TriedAssociation(
                association_id=tried.association_id, outcome=tried.outcome.value,
                reason=tried.reason,
            )
            for tried in event.tried
        ],
        contact=callback_contact(event.contact) if event.contact else None, at=event.at,
    )  # fmt: skip


def callback_contact(contact: Contact) -> CallbackContact:
    return CallbackContact(
        first_name=contact.first_name, email=contact.email, phone=contact.phone,
        preferred_channel=contact.preferred_channel,
    )  # fmt: skip


def referral_offered(event: ReferralV1) -> ReferralOffered:
    """A referral as its association reads it on `referrals.<id>`: what the person shared."""
    return ReferralOffered(
        referral_id=str(event.referral_id), reference=event.reference,
        association_id=event.association_id, urgent=event.urgent, stage=event.stage,
        region=event.region, department=event.department, needs=event.needs,
        contact=callback_contact(event.contact), message=event.message,
        distress=event.distress.value if event.distress else None,
        reasons=event.reasons, offered_at=event.referred_at, respond_by=event.respond_by,
        antenna=event.antenna.name if event.antenna else None,
    )  # fmt: skip


def status_changed(event: ReferralStatusV1) -> StatusChanged:
    return StatusChanged(
        reference=event.reference,
        referral_id=str(event.referral_id) if event.referral_id else None,
        association_id=event.association_id, status=event.status.value, reason=event.reason,
        call_by=event.call_by, caller=event.caller, at=event.at,
    )  # fmt: skip


def override_applied(event: DirectoryAppliedV1) -> OverrideApplied:
    return OverrideApplied(
        override_id=str(event.override_id), association_id=event.association_id,
        values=EffectiveValues(
            paused=event.paused, weekly_capacity=event.weekly_capacity,
            response_deadline_days=event.response_deadline_days,
        ),
        rule_set_version=event.rule_set_version, at=event.applied_at,
    )  # fmt: skip


def follow_up_answered(event: FollowUpAnsweredV1) -> FollowUpAnswered:
    return FollowUpAnswered(
        reference=event.reference, referral_id=str(event.referral_id),
        association_id=event.association_id, contacted=event.contacted, at=event.answered_at,
        statistics_consent=event.statistics_consent,
    )  # fmt: skip


Apply = Callable[[Store, Any], Awaitable[object]]


def _projection(data: BaseModel) -> tuple[Apply, BaseModel] | None:
    """The projection and fact of one event (None: nothing the console keeps)."""
    match data:
        case UnroutedReferralV1():
            return projections.case_queued, case_queued(data)
        case ReferralV1():
            return projections.referral_offered, referral_offered(data)
        case ReferralStatusV1():
            return projections.status_changed, status_changed(data)
        case DirectoryAppliedV1():
            return projections.override_applied, override_applied(data)
        case FollowUpAnsweredV1():
            return projections.follow_up_answered, follow_up_answered(data)
        case CaseFactV1():
            return projections.statistics_fact, statistics_fact(data)
        case PeerMatchV1(status=PeerMatchStatus.PROPOSED, match_id=uuid.UUID()):
            return projections.statistics_fact, peer_match_fact(data)
        case ErasureRequestedV1():
            return projections.withdrawn, Withdrawn(reference=data.reference, at=data.requested_at)
        case ReferralWithdrawnV1():
            return projections.withdrawn, Withdrawn(reference=data.reference, at=data.withdrawn_at)
    return None


def statistics_fact(event: CaseFactV1) -> StatisticsFact:
    """The router's anonymous fact, as the statistics keep it: the router sends only those of
    people who consented (`rebond_router.statistics`)."""
    return StatisticsFact(
        fact_id=str(event.fact_id), kind=event.kind.value, at=event.day, consented=True,
        region=event.region, stage=event.stage, association_id=event.association_id,
        reason=event.reason, seconds_to_answer=event.seconds_to_answer,
    )  # fmt: skip


def peer_match_fact(event: PeerMatchV1) -> StatisticsFact:
    """A volunteer proposed to a person (events' `proposed` step), as the statistics count it:
    once per match (its id), by region and day (midnight UTC, no time, no reference); kept only
    if the person consented to statistics (`projections.statistics_fact` drops the others)."""
    return StatisticsFact(
        fact_id=f"peer-match:{event.match_id}", kind="peer_match",
        at=event.at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0),
        consented=event.statistics_consent, region=event.region,
    )  # fmt: skip


def subscribe_facts(
    broker: KafkaBroker,
    store: Store,
    dead_letters: DeadLetters,
    group_id: str,
    record_scope: RecordScope = no_scope,
) -> None:
    """Feed the projections from Kafka (see the module's docstring)."""

    async def handle(received: Received[BaseModel]) -> None:
        found = _projection(received.data)
        if found is None:
            return
        apply, fact = found
        await apply(store, fact)
        log.info("fact_applied", topic=received.topic.name, kind=type(fact).__name__)

    topics = [
        UNROUTED, REFERRAL_STATUS, FOLLOW_UPS, STATISTICS, PEER_MATCHES, APPLIED, ERASURES,
        *(referrals(a) for a in AssociationId),
    ]  # fmt: skip
    subscribe(
        broker, topics, handle, dead_letters=dead_letters, group_id=group_id,
        description="The human queue, the associations' referrals, their statuses, the "
        "follow-ups, the statistics' facts, the peer matches, the applied overrides and the "
        "erasures, applied to the console's store.",
        record_scope=record_scope, title="coordination facts",
    )  # fmt: skip
