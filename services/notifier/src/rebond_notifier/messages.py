"""Everything the notifier publishes, as the outbox messages (`rebond_sql.outbox.Message`) its
store writes in the transaction of what they tell: a referral offered (`referrals.<id>`), its
withdrawal after an erasure (the same topic), an answer given through an e-mail link
(`responses.<id>`) and a delivery's outcome (`notifications.deliveries`).

Each event id is derived from what the event is about (the referral; the referral and the
answer; the delivery and its outcome), so a message published again (a crash between Kafka's
acknowledgement and the outbox row's deletion, a redelivered decision) carries the id it had,
and its readers recognise it. A message written while a record or a request is handled carries
that trace (`traceparent`), so the trace goes on through the outbox.
"""

import uuid
from datetime import datetime
from typing import Any, Protocol

from rebond_contracts.answers import answer_event
from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import (
    DeliveryChannel,
    DeliveryOutcome,
    DeliveryV1,
    FollowUpAnsweredV1,
    ReferralResponseV1,
    ReferralV1,
    ReferralWithdrawnV1,
)
from rebond_contracts.topics import DELIVERIES, FOLLOW_UPS, referrals, responses
from rebond_contracts.tracing import HEADER as TRACE_HEADER
from rebond_contracts.tracing import TraceParent
from rebond_observability import current_trace
from rebond_sql.outbox import Message

#: Withdrawal notices' event ids: one per referral and association.
WITHDRAWAL_NAMESPACE = uuid.UUID("0f8d6b1e-3c2a-4e7b-9d55-7a1c2e9b4f60")
#: Follow-up answers' event ids: one per referral (the person answers once).
FOLLOW_UP_NAMESPACE = uuid.UUID("c3a1e7d4-2b9f-4c61-8e05-71d4b2a9f6e8")
#: Event ids of outcomes are derived from the delivery, so a republished outcome is recognisable.
OUTCOME_NAMESPACE = uuid.UUID("6f1c1c52-4a57-4c56-9c43-1f0c1f4a3b10")


def message(event: Envelope[Any], topic: str, trace: TraceParent | None = None) -> Message:
    """`event` as an outbox message on `topic`, keyed by its subject (the submission
    reference), with `trace` or else the trace in progress."""
    headers = event.kafka_headers()
    if (trace := trace or current_trace()) is not None:
        headers[TRACE_HEADER] = trace.header()
    return Message(
        topic=topic, key=event.subject, value=event.kafka_value(), headers=headers,
        subject=event.subject,
    )  # fmt: skip


def offered(event: Envelope[ReferralV1]) -> Message:
    """The referral of a decision, for its association's topic (its event id: the referral id)."""
    return message(event, referrals(event.data.association_id).name)


def withdrawn(
    reference: str,
    referral_id: str,
    association: AssociationId,
    at: datetime,
    correlation: str,
    trace: TraceParent | None,
) -> Message:
    """The notice that tells `association` a referral it was (or may have been) handed is
    withdrawn: the person asked for erasure. Written in the erasure's transaction, which may
    run in the store's own thread, without the handler's context: hence `trace`."""
    notice = withdrawal_event(reference, referral_id, association, at, correlation)
    return message(notice, referrals(association).name, trace)


def withdrawal_event(
    reference: str, referral_id: str, association: AssociationId, at: datetime, correlation: str
) -> Envelope[ReferralWithdrawnV1]:
    """The withdrawal as an event of the association's topic; the webhook carries the same
    event (same id), so a receiver reading both deduplicates them."""
    return referrals(association).envelope(
        ReferralWithdrawnV1(
            reference=reference, referral_id=uuid.UUID(referral_id), association_id=association,
            withdrawn_at=at,
        ),
        subject=reference, correlationid=correlation,
        id=str(uuid.uuid5(WITHDRAWAL_NAMESPACE, f"{referral_id}:{association}")),
    )  # fmt: skip


def answered(association: AssociationId, response: ReferralResponseV1) -> Message:
    """An answer given through an e-mail link, on `responses.<association_id>` on the
    association's behalf (the event the console's inbox would give for the same answer)."""
    return message(answer_event(association, response), responses(association).name)


def followed_up(answer: FollowUpAnsweredV1, correlation: str) -> Message:
    """The person's answer to the follow-up, for `referrals.followups` (its event id: derived
    from the referral, so a republished answer is recognisable)."""
    event = FOLLOW_UPS.envelope(
        answer, subject=answer.reference, correlationid=correlation,
        id=str(uuid.uuid5(FOLLOW_UP_NAMESPACE, str(answer.referral_id))),
    )  # fmt: skip
    return message(event, FOLLOW_UPS.name)


class Attempted(Protocol):
    """What an outcome says of a delivery (`store.Delivery` has it)."""

    @property
    def referral_id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def reference(self) -> str: ...
    @property
    def association_id(self) -> str: ...
    @property
    def correlation_id(self) -> str: ...


#: Kinds of the events service's peer e-mails (`planning.COMMUNITY_KINDS`): filed under the
#: person's reference only so that the person's erasure cancels them while unsent. They tell
#: no outcome: an introduction goes to the volunteer as well as to the person, and the
#: person's status would read "an e-mail was sent to you" for a mail that was not theirs.
PEER_INTRO = "peer_intro"
PEER_NONE = "peer_none"
UNTOLD_KINDS = frozenset({PEER_INTRO, PEER_NONE})


def outcome(delivery: Attempted, result: str, attempts: int, at: datetime) -> Message | None:
    """A delivery's final outcome (no personal data), or None for a delivery about no
    submission reference (the e-mails about conference registrations: `DeliveryV1` is keyed
    by a reference) or of an `UNTOLD_KINDS` kind."""
    if not delivery.reference or delivery.kind in UNTOLD_KINDS:
        return None
    about_referral = bool(delivery.association_id)  # conference e-mails belong to no association
    event = DeliveryV1(
        reference=delivery.reference,
        referral_id=uuid.UUID(delivery.referral_id) if about_referral else None,
        association_id=AssociationId(delivery.association_id) if about_referral else None,
        channel=DeliveryChannel(delivery.channel),
        outcome=DeliveryOutcome(result),
        attempts=max(1, attempts),
        at=at,
    )
    key = f"{delivery.referral_id}:{delivery.channel}:{delivery.kind}:{result}"
    envelope = DELIVERIES.envelope(
        event, subject=delivery.reference, correlationid=delivery.correlation_id,
        id=str(uuid.uuid5(OUTCOME_NAMESPACE, key)),
    )  # fmt: skip
    return message(envelope, DELIVERIES.name)
