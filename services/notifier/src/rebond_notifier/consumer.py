"""Kafka entry points: routing decisions, referral status changes, and the Conférences du
rebond's registrations and invitations (each becomes one e-mail to the person, recorded in the
same delivery log, keyed by the event so that a redelivery sends nothing twice).

A decision with a referral is published to `referrals.<association_id>` (CloudEvents binary
mode, so kcat, Java or Node can read it) and its e-mails and webhook are *recorded* in the
delivery log; the offset is committed only then (at least once), and the dispatcher sends them
without ever holding up the partition. The referral's event id is its referral id and the log is
unique per (referral, channel), so a redelivered decision sends nothing twice. Nothing is
published or recorded for a reference whose person asked for erasure, whichever of the
decision and the erasure is read first (`DeliveryStore.publish_referrals`).
"""

import asyncio
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, NamedTuple

import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import SkipValidation

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope, EnvelopeError
from rebond_contracts.payloads import (
    DeliveryV1,
    ReferralResponseV1,
    ReferralV1,
    ReferralWithdrawnV1,
    RoutingDecisionV1,
)
from rebond_contracts.topics import (
    DECISIONS,
    DELIVERIES,
    ERASURES,
    INVITATIONS,
    REFERRAL_STATUS,
    REGISTRATIONS,
    Service,
    Topic,
    dead_letters,
    referrals,
    responses,
)
from rebond_kafka.records import keep_raw, keep_raw_batch, send_dead_letter
from rebond_kafka.security import kafka_security
from rebond_kafka.settings import bootstrap_servers
from rebond_notifier import planning
from rebond_notifier.config import AssociationChannels
from rebond_notifier.settings import NotifierSettings
from rebond_notifier.store import DeliveryStore, Holder, NewDelivery, Offer, ReferralState

log = structlog.get_logger(__name__)
DEAD_LETTERS = dead_letters(Service.NOTIFIER)
#: Event ids of answers given through a link: one per referral and answer.
ANSWER_NAMESPACE = uuid.UUID("1d0b3c0e-58e2-4f8e-9a0e-6a4f3f2d9c21")
#: Withdrawal notices' event ids: one per referral and association.
WITHDRAWAL_NAMESPACE = uuid.UUID("0f8d6b1e-3c2a-4e7b-9d55-7a1c2e9b4f60")


def answer_event_id(referral_id: uuid.UUID, answer: str) -> str:
    return str(uuid.uuid5(ANSWER_NAMESPACE, f"{referral_id}:{answer}"))


def _declare(broker: KafkaBroker, topic: Topic, description: str | None = None) -> Any:
    return broker.publisher(
        topic.name,
        title=topic.name,
        description=description or topic.description,
        schema=topic.payload,
    )


@dataclass
class Publishers:
    referrals: dict[AssociationId, Any]
    responses: dict[AssociationId, Any]
    deliveries: Any
    dead: Any

    async def outcome(
        self, event: DeliveryV1, event_id: str, correlation_id: str
    ) -> "asyncio.Future[object]":
        """Hand a delivery outcome (no personal data) to the producer for
        `notifications.deliveries`; the future completes on Kafka's acknowledgement."""
        out = DELIVERIES.envelope(
            event, subject=event.reference, correlationid=correlation_id, id=event_id
        )
        ack: asyncio.Future[object] = await self.deliveries.publish(
            out.kafka_value(), key=event.reference.encode(), headers=out.kafka_headers(),
            correlation_id=correlation_id, no_confirm=True,
        )  # fmt: skip
        return ack

    async def response(self, association: AssociationId, response: ReferralResponseV1) -> None:
        """Publish an answer given through an e-mail link to `responses.<association_id>`."""
        topic = responses(association)
        out = topic.envelope(
            response, subject=response.reference, correlationid=response.reference,
            id=answer_event_id(response.referral_id, response.answer.value),
        )  # fmt: skip
        await self.responses[association].publish(
            out.kafka_value(), key=response.reference.encode(), headers=out.kafka_headers(),
            correlation_id=out.correlationid,
        )  # fmt: skip


RecordScope = Callable[["ConsumerRecord[bytes, bytes]"], AbstractContextManager[object]]


class _Source(NamedTuple):
    """Where an offer comes from: its record, its decision, and the referral to publish."""

    record: "ConsumerRecord[bytes, bytes]"
    decision: Envelope[RoutingDecisionV1]
    referral: Envelope[ReferralV1]


def _bound(event: Envelope[Any]) -> AbstractContextManager[object]:
    """The log context of one event: its reference and id."""
    return structlog.contextvars.bound_contextvars(reference=event.subject, event_id=event.id)


def build_broker(
    settings: NotifierSettings,
    store: DeliveryStore,
    associations: Mapping[AssociationId, AssociationChannels],
    links: planning.LinkMaker,
    wake: Callable[[], None],
    record_scope: RecordScope = lambda _record: nullcontext(),
) -> tuple[KafkaBroker, Publishers]:
    """The broker with the notifier's subscribers and publishers declared. Decisions come in
    batches; `record_scope` gives each record of a batch its trace and log context."""
    broker = KafkaBroker(
        bootstrap_servers(settings.kafka_bootstrap_servers),
        security=kafka_security(settings),
        acks="all",
        enable_idempotence=True,
        client_id="rebond-notifier",
        logger=None,
    )
    publishers = Publishers(
        referrals={a: _declare(broker, referrals(a)) for a in AssociationId},
        responses={
            a: _declare(
                broker,
                responses(a),
                f"Answers given through the e-mail links on behalf of {a.value}.",
            )
            for a in AssociationId
        },
        deliveries=_declare(broker, DELIVERIES),
        dead=_declare(broker, DEAD_LETTERS),
    )

    @broker.subscriber(
        DECISIONS.name,
        group_id=settings.group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        decoder=keep_raw_batch,
        title=DECISIONS.name,
        description="Publish each decision's referral, record its e-mails and webhook.",
    )
    async def on_decisions(body: SkipValidation[RoutingDecisionV1], msg: KafkaMessage) -> None:
        # `body` is the batch's raw bytes (`keep_raw_batch`); it is typed per record because the
        # AsyncAPI document describes the channel's messages, one decision each.
        records: tuple[ConsumerRecord[bytes, bytes], ...] = msg.raw_message  # type: ignore[assignment]
        readable: list[tuple[ConsumerRecord[bytes, bytes], Envelope[RoutingDecisionV1]]] = []
        for record in records:
            try:
                readable.append((record, DECISIONS.read(record.value, record.headers)))
            except EnvelopeError as error:
                with record_scope(record):
                    await send_dead_letter(publishers.dead, Service.NOTIFIER, record, str(error))
        offers: list[Offer] = []
        sources: dict[str, _Source] = {}  # by referral id
        for record, event in readable:
            decision, referral = event.data, event.data.referral
            if referral is None:
                with record_scope(record), _bound(event):
                    log.info("no_referral", reason="no consent to share")
                continue
            out = referrals(referral.association_id).envelope(
                referral, subject=event.subject, correlationid=event.correlationid,
                id=str(referral.referral_id),
            )  # fmt: skip
            offers.append(
                Offer(
                    str(referral.referral_id), decision.reference, referral.association_id.value,
                    planning.for_decision(decision, out, associations, links),
                )
            )  # fmt: skip
            sources[str(referral.referral_id)] = _Source(record, event, out)

        async def publish(kept: list[Offer]) -> None:
            acks = []
            for offer in kept:
                record, _, out = sources[offer.referral_id]
                with record_scope(record):  # the decision's trace goes on with its referral
                    acks.append(
                        await publishers.referrals[AssociationId(offer.association_id)].publish(
                            out.kafka_value(), key=record.key, headers=out.kafka_headers(),
                            correlation_id=out.correlationid, no_confirm=True,
                        )
                    )  # fmt: skip
            await asyncio.gather(*acks)  # every referral acknowledged by Kafka (acks=all), or raise

        done = await store.publish_referrals(offers, publish)
        for offer in done.published:
            record, event, _ = sources[offer.referral_id]
            with record_scope(record), _bound(event):
                log.info(
                    "referral_published", association=offer.association_id,
                    attempt=event.data.attempt,
                )  # fmt: skip
        for offer in done.erased:
            record, event, _ = sources[offer.referral_id]
            with record_scope(record), _bound(event):
                log.info("not_published", reason="erasure requested")
        if done.deliveries:
            log.info("deliveries_recorded", new=done.deliveries, referrals=len(done.published))
            wake()

    @broker.subscriber(
        REFERRAL_STATUS.name,
        group_id=f"{settings.group_id}.status",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        # Reminders and expiries are days apart: a status may wait for 64 KiB of others, or
        # aiokafka's default 500 ms, so that a busy notifier reads a few batches a second.
        fetch_min_bytes=64 * 1024,
        decoder=keep_raw_batch,
        title=REFERRAL_STATUS.name,
        description="Turn reminders and expiries into e-mails to the association; keep each "
        "referral's latest status for the answer pages.",
    )
    async def on_statuses(msg: KafkaMessage) -> None:
        # A batch (`keep_raw_batch`): most statuses (offered, accepted, declined…) ask for no
        # e-mail, and one per referral or more arrives; read together, they cost one consumer
        # round and at most one store transaction.
        records: tuple[ConsumerRecord[bytes, bytes], ...] = msg.raw_message  # type: ignore[assignment]
        planned: list[NewDelivery] = []
        states: list[ReferralState] = []
        for record in records:
            with record_scope(record):
                try:
                    event = REFERRAL_STATUS.read(record.value, record.headers)
                except EnvelopeError as error:
                    await send_dead_letter(publishers.dead, Service.NOTIFIER, record, str(error))
                    continue
                if event.data.referral_id is not None:  # kept for the answer pages
                    states.append(
                        ReferralState(
                            str(event.data.referral_id),
                            event.data.status.value,
                            event.data.at.timestamp(),
                        )
                    )
                with structlog.contextvars.bound_contextvars(
                    reference=event.subject, event_id=event.id
                ):
                    mails = planning.for_status(
                        event.data, event.correlationid, associations, links
                    )
                    if mails:
                        log.info("status_mail_planned", status=event.data.status)
                    planned.extend(mails)
        added = await store.enqueue(planned, states=states)
        if added:
            log.info("status_mails_recorded", new=added, planned=len(planned))
            wake()

    @broker.subscriber(
        REGISTRATIONS.name,
        group_id=f"{settings.group_id}.registrations",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=keep_raw,
        title=REGISTRATIONS.name,
        description="Record one e-mail to the person per registration event (confirmed, "
        "waitlisted, promoted, cancelled, conference changed).",
    )
    async def on_registration(msg: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message  # type: ignore[assignment]
        try:
            event = REGISTRATIONS.read(record.value, record.headers)
        except EnvelopeError as error:
            await send_dead_letter(publishers.dead, Service.NOTIFIER, record, str(error))
            return
        registration = event.data
        with structlog.contextvars.bound_contextvars(
            event_id=event.id, registration_id=str(registration.registration_id)
        ):
            added = await store.enqueue(planning.for_registration(event))
            log.info("registration_mail_recorded", change=registration.change, new=added)
            if added:
                wake()

    @broker.subscriber(
        INVITATIONS.name,
        group_id=f"{settings.group_id}.invitations",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=keep_raw,
        title=INVITATIONS.name,
        description="Record one invitation e-mail per invitation.",
    )
    async def on_invitation(msg: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message  # type: ignore[assignment]
        try:
            event = INVITATIONS.read(record.value, record.headers)
        except EnvelopeError as error:
            await send_dead_letter(publishers.dead, Service.NOTIFIER, record, str(error))
            return
        with structlog.contextvars.bound_contextvars(reference=event.subject, event_id=event.id):
            added = await store.enqueue(planning.for_invitation(event))
            log.info("invitation_mail_recorded", new=added)
            if added:
                wake()

    @broker.subscriber(
        ERASURES.name,
        group_id=f"{settings.group_id}.erasures",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=keep_raw,
        title=ERASURES.name,
        description="Erase the delivery rows of a person who withdrew, send nothing more, and "
        "tell each association holding the referral on its topic.",
    )
    async def on_erasure(msg: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message  # type: ignore[assignment]
        try:
            event = ERASURES.read(record.value, record.headers)
        except EnvelopeError as error:
            await send_dead_letter(publishers.dead, Service.NOTIFIER, record, str(error))
            return
        reference = event.data.reference

        async def withdraw(holders: list[Holder]) -> None:
            """Tell each association, on its topic, before the erasure commits."""
            for holder in holders:
                association = AssociationId(holder.association_id)
                notice = referrals(association).envelope(
                    ReferralWithdrawnV1(
                        reference=reference,
                        referral_id=uuid.UUID(holder.referral_id),
                        association_id=association,
                        withdrawn_at=event.data.requested_at,
                    ),
                    subject=reference,
                    correlationid=event.correlationid,
                    id=str(uuid.uuid5(WITHDRAWAL_NAMESPACE, f"{holder.referral_id}:{association}")),
                )
                await publishers.referrals[association].publish(
                    notice.kafka_value(), key=reference.encode(), headers=notice.kafka_headers(),
                    correlation_id=notice.correlationid,
                )  # fmt: skip

        with _bound(event):
            holders = await store.erase(reference, withdraw)
            log.info("erased", associations_told=[h.association_id for h in holders])

    return broker, publishers
