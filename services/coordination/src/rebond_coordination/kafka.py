"""The console on Kafka: what it publishes (`KafkaOutbound`) and what it reads (`subscribe_facts`).

Publishing: an association's answer given in the inbox goes to `responses.<association_id>`
as the notifier's e-mail links publish it (`rebond_contracts.answers`: the same event, the same
id), through an idempotent producer that waits for every in-sync replica (acks=all). A message
the broker did not acknowledge raises `OutboundUnavailable`, so it stays in the outbox and the
relay sends it again; the id lets the router drop a repeat. Assignments, closures, directory
overrides and outcomes have no reader yet (the router does not consume them): they are refused
with `NotPlugged` and wait in the outbox, unpublished, instead of going to a topic nobody reads.

Reading: one subscriber (group `rebond-coordination[.<name>]`) of the human queue, every
association's referrals, the referrals' statuses and the erasures turns each event into a fact
of `facts.py` and applies it with `projections.py`. Each projection is idempotent, and the
offset is committed only after it returned (`rebond_kafka.consume.subscribe`), so at-least-once
delivery leaves the store as one delivery would. A record the contract refuses is dead-lettered.
"""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka.errors import KafkaError
from faststream.exceptions import FastStreamException
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from rebond_contracts.answers import answer_event
from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    ErasureRequestedV1,
    ReferralResponseV1,
    ReferralStatusV1,
    ReferralV1,
    ReferralWithdrawnV1,
    UnroutedReferralV1,
)
from rebond_contracts.topics import ERASURES, REFERRAL_STATUS, UNROUTED, referrals, responses
from rebond_coordination import projections
from rebond_coordination.domain import Cause
from rebond_coordination.facts import (
    CallbackContact,
    CaseQueued,
    ReferralOffered,
    StatusChanged,
    TriedAssociation,
    Withdrawn,
)
from rebond_coordination.ports import (
    AnswerGiven,
    NotPlugged,
    OutboundMessage,
    OutboundUnavailable,
)
from rebond_coordination.settings import CoordinationSettings
from rebond_coordination.store import Store
from rebond_kafka.consume import DeadLetters, Received, RecordScope, no_scope, subscribe
from rebond_kafka.security import kafka_security

log = structlog.get_logger(__name__)

#: The outbound kinds no service consumes yet (the router's side of issue 21 is not built).
UNPLUGGED = frozenset({"assign", "close", "override", "outcome"})

#: The router's causes of a queued case, as the console names them (a cause it does not know
#: yet is shown as "no association matches", the widest).
_CAUSES = {
    "no_candidate": Cause.UNROUTED,
    "all_declined_or_expired": Cause.ALL_DECLINED,
    "expired": Cause.EXPIRED,
    "follow_up_not_contacted": Cause.NOT_CONTACTED,
    "not_contacted": Cause.NOT_CONTACTED,
}


def build_broker(settings: CoordinationSettings) -> KafkaBroker:
    """One client for both directions: an idempotent producer waiting for every in-sync
    replica (acks=all), so an acknowledged answer is on Kafka for good and a retried one is
    written once."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=kafka_security(settings),
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=10_000,
        client_id="rebond-coordination",
        logger=None,
    )


class KafkaOutbound:
    """`ports.Outbound` on Kafka. `connected` says whether the broker is started and reachable:
    while it is not, a message is refused at once instead of waiting in the producer."""

    unplugged = UNPLUGGED

    def __init__(self, broker: KafkaBroker, connected: Callable[[], bool]) -> None:
        self._connected = connected
        self._responses = {
            association: broker.publisher(
                responses(association).name,
                title=responses(association).name,
                description="An answer given in the console's inbox, on the association's behalf.",
                schema=ReferralResponseV1,
            )
            for association in AssociationId
        }

    async def publish(self, message: OutboundMessage) -> None:
        if not isinstance(message, AnswerGiven):
            raise NotPlugged(
                f"pas encore branché : aucun service ne lit encore les messages « {message.kind} »"
            )
        if not self._connected():
            raise OutboundUnavailable("Kafka n'est pas joignable pour l'instant")
        association = AssociationId(message.association_id)
        event = answer_event(
            association,
            ReferralResponseV1(
                referral_id=uuid.UUID(message.referral_id), reference=message.reference,
                answer=message.answer, reason=message.reason, answered_at=message.at,
            ),
        )  # fmt: skip
        try:
            await self._responses[association].publish(
                event.kafka_value(), key=event.subject.encode(), headers=event.kafka_headers(),
                correlation_id=event.correlationid,
            )  # fmt: skip
        except (KafkaError, OSError, TimeoutError, FastStreamException) as error:
            raise OutboundUnavailable(
                f"Kafka n'a pas accusé réception ({type(error).__name__})"
            ) from error


def case_queued(event: UnroutedReferralV1) -> CaseQueued:
    """The human queue's case; no contact (the router does not share one yet)."""
    return CaseQueued(
        reference=event.reference, urgent=event.urgent, stage=event.stage, region=event.region,
        needs=event.needs, cause=_CAUSES.get(event.cause, Cause.UNROUTED),
        tried=[
            TriedAssociation(
                association_id=tried.association_id, outcome=tried.outcome.value,
                reason=tried.reason,
            )
            for tried in event.tried
        ],
        at=event.at,
    )  # fmt: skip


def referral_offered(event: ReferralV1) -> ReferralOffered:
    """A referral as its association reads it on `referrals.<id>`: what the person shared."""
    contact = event.contact
    return ReferralOffered(
        referral_id=str(event.referral_id), reference=event.reference,
        association_id=event.association_id, urgent=event.urgent, stage=event.stage,
        region=event.region, department=event.department, needs=event.needs,
        contact=CallbackContact(
            first_name=contact.first_name, email=contact.email, phone=contact.phone,
            preferred_channel=contact.preferred_channel,
        ),
        message=event.message, distress=event.distress.value if event.distress else None,
        reasons=event.reasons, offered_at=event.referred_at, respond_by=event.respond_by,
    )  # fmt: skip


def status_changed(event: ReferralStatusV1) -> StatusChanged:
    return StatusChanged(
        reference=event.reference,
        referral_id=str(event.referral_id) if event.referral_id else None,
        association_id=event.association_id, status=event.status.value, reason=event.reason,
        at=event.at,
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
        case ErasureRequestedV1():
            return projections.withdrawn, Withdrawn(reference=data.reference, at=data.requested_at)
        case ReferralWithdrawnV1():
            return projections.withdrawn, Withdrawn(reference=data.reference, at=data.withdrawn_at)
    return None


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

    topics = [UNROUTED, REFERRAL_STATUS, ERASURES, *(referrals(a) for a in AssociationId)]
    subscribe(
        broker, topics, handle, dead_letters=dead_letters, group_id=group_id,
        description="The human queue, the associations' referrals, their statuses and the "
        "erasures, applied to the console's store.",
        record_scope=record_scope, title="coordination facts",
    )  # fmt: skip
