"""Kafka entry points: routing decisions, referral status changes and erasures, the
Conférences du rebond's registrations and invitations, and the events service's e-mails about
success stories and peer exchange (`community.mail`) (each becomes one e-mail to the person,
recorded in the same delivery log, keyed by the event so that a redelivery sends nothing
twice). Each is declared with `rebond_kafka.consume.subscribe`: a handler gets the records read
by their topic's contract, and what the contract refuses goes to `deadletter.notifier`.

A decision with a referral has its offer noted, its e-mails and webhook recorded and its
referral written to the outbox in one store transaction (`DeliveryStore.offer`); the handler
then flushes the outbox, so the referral is on `referrals.<association_id>` (CloudEvents binary
mode, so kcat, Java or Node can read it) before the offset is committed (at least once). The
dispatcher sends the e-mails and webhook without ever holding up the partition. The referral's
event id is its referral id and the log is unique per (referral, channel), so a redelivered
decision sends nothing twice. Nothing is published or recorded for a reference whose person
asked for erasure, whichever of the decision and the erasure is read first
(`DeliveryStore.offer`); an erasure's withdrawal notices are written with it and flushed the
same way.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from faststream.kafka import KafkaBroker

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    CommunityMailV1,
    ErasureRequestedV1,
    InvitationV1,
    ReferralStatus,
    ReferralStatusV1,
    RegistrationV1,
    RoutingDecisionV1,
)
from rebond_contracts.topics import (
    COMMUNITY_MAIL,
    DECISIONS,
    DELIVERIES,
    ERASURES,
    FOLLOW_UPS,
    INVITATIONS,
    REFERRAL_STATUS,
    REGISTRATIONS,
    Service,
    Topic,
    referrals,
    responses,
)
from rebond_kafka.brokers import durable_broker
from rebond_kafka.consume import (
    Batch,
    DeadLetters,
    Received,
    RecordScope,
    SingleHandler,
    no_scope,
    subscribe,
)
from rebond_kafka.security import kafka_security
from rebond_notifier import messages, planning
from rebond_notifier.config import AssociationChannels
from rebond_notifier.settings import NotifierSettings
from rebond_notifier.store import (
    DeliveryStore,
    Holder,
    NewDelivery,
    Offer,
    Person,
    ReferralState,
    Told,
)
from rebond_observability import current_trace
from rebond_sql.outbox import Message, Relay, Send

log = structlog.get_logger(__name__)


def build_broker(settings: NotifierSettings) -> KafkaBroker:
    """The notifier's broker (acks=all, idempotent producer), not connected."""
    return durable_broker(
        settings.kafka_bootstrap_servers, "rebond-notifier", security=kafka_security(settings)
    )


def outbox_sender(broker: KafkaBroker) -> Send:
    """Declare a publisher per topic the notifier writes (for the AsyncAPI document and the
    metrics), and return the relay's `send`: a message handed to its topic's producer, whose
    future completes on Kafka's acknowledgement."""
    topics: list[tuple[Topic, str]] = [
        *((referrals(a), referrals(a).description) for a in AssociationId),
        *((responses(a), f"Answers given through the e-mail links on behalf of {a.value}.")
          for a in AssociationId),
        (DELIVERIES, DELIVERIES.description),
        (FOLLOW_UPS, FOLLOW_UPS.description),
    ]  # fmt: skip
    publishers = {
        topic.name: broker.publisher(
            topic.name, title=topic.name, description=description, schema=topic.payload
        )
        for topic, description in topics
    }

    async def send(message: Message) -> Awaitable[object]:
        ack: Awaitable[object] | None = await publishers[message.topic].publish(
            message.value, key=message.key.encode(), headers=dict(message.headers),
            correlation_id=message.headers.get("ce_correlationid"), no_confirm=True,
        )  # fmt: skip
        # aiokafka hands back the acknowledgement's future; FastStream's in-memory test broker
        # nothing (it has delivered the record to its subscribers already).
        return ack if ack is not None else asyncio.sleep(0)

    return send


class Handlers:
    """What the notifier does with each record it reads (`subscribe_all` declares them)."""

    def __init__(
        self,
        store: DeliveryStore,
        relay: Relay,
        associations: Mapping[AssociationId, AssociationChannels],
        links: planning.LinkMaker,
        wake: Callable[[], None],
        *,
        callback_days: int = 2,
    ) -> None:
        self.store = store
        self.relay = relay
        self.associations = associations
        self.links = links
        self.wake = wake
        self.callback_days = callback_days

    async def decisions(self, batch: Sequence[Received[RoutingDecisionV1]]) -> None:
        """Offer each decision's referral (`DeliveryStore.offer`), then publish them all before
        the batch's offset is committed."""
        offers: list[Offer] = []
        sources: dict[str, Received[RoutingDecisionV1]] = {}  # by referral id
        for received in batch:
            with received.scope():
                decision, referral = received.data, received.data.referral
                if referral is None:
                    log.info("no_referral", reason="no consent to share")
                    continue
                event = referrals(referral.association_id).envelope(
                    referral, subject=received.event.subject,
                    correlationid=received.event.correlationid, id=str(referral.referral_id),
                )  # fmt: skip
                contact = referral.contact
                person = None
                if contact.email:  # kept for the e-mails of the request's next steps
                    person = Person(
                        decision.reference,
                        contact.first_name,
                        contact.email,
                        referral.locale,
                        statistics=decision.statistics_consent,
                    )
                offers.append(
                    Offer(
                        str(referral.referral_id), decision.reference,
                        referral.association_id.value,
                        planning.for_decision(decision, event, self.associations, self.links),
                        messages.offered(event),  # in the record's scope: its trace goes on
                        person,
                        referral.antenna.model_dump_json() if referral.antenna else None,
                    )
                )  # fmt: skip
                sources[str(referral.referral_id)] = received
        done = await self.store.offer(offers)
        if done.kept:  # every referral acknowledged by Kafka (acks=all), or raise: read again
            await self.relay.flush(sorted({offer.reference for offer in done.kept}))
        for offer in done.kept:
            with sources[offer.referral_id].scope():
                attempt = sources[offer.referral_id].data.attempt
                log.info("referral_published", association=offer.association_id, attempt=attempt)
        for offer in done.erased:
            with sources[offer.referral_id].scope():
                log.info("not_published", reason="erasure requested")
        if done.deliveries:
            log.info("deliveries_recorded", new=done.deliveries, referrals=len(done.kept))
            self.wake()

    async def statuses(self, batch: Sequence[Received[ReferralStatusV1]]) -> None:
        """Reminders and expiries become e-mails (and webhooks) to the association; the steps
        of a request whose person gave an address become e-mails to them (`planning.for_person`);
        every referral's latest status is kept for the answer pages. Read together, statuses
        cost one consumer round, one read of the people and one transaction."""
        planned = []
        states = []
        about_person = {r.data.reference for r in batch if r.data.status in planning.PERSON_KINDS}
        people = await self.store.people(about_person)
        # What each person was told already, and then in this batch: with two tracks, the
        # second of two alike steps says what differs (`planning.earlier`).
        told = await self.store.told(set(people))
        # The antenna each reminded or expired referral was offered to: they go there too.
        antennas = await self.store.antennas(
            {
                str(r.data.referral_id)
                for r in batch
                if r.data.referral_id is not None
                and r.data.status in (ReferralStatus.REMINDED, ReferralStatus.EXPIRED)
            }
        )
        before: dict[str, ReferralStatus] = {}  # each referral's status before the one read
        for received in batch:
            with received.scope():
                status = received.data
                referral = str(status.referral_id) if status.referral_id else ""
                if status.referral_id is not None:  # kept for the answer pages
                    states.append(ReferralState(referral, status.status, status.at))
                person = people.get(status.reference)
                if person is not None:
                    cause = before.get(referral)
                    if cause is None and status.status == ReferralStatus.REORIENTED:
                        known = await self.store.referral_state(referral)
                        cause = known.status if known else None
                    mails = planning.for_person(
                        status, person, received.event.correlationid, self.links,
                        cause=cause, callback_days=self.callback_days,
                        told=told.get(status.reference, []),
                    )  # fmt: skip
                    told.setdefault(status.reference, []).extend(
                        Told(m.kind, m.association_id) for m in mails
                    )
                    planned.extend(mails)
                if referral:
                    before[referral] = status.status
                mails = planning.for_status(
                    status, received.event.correlationid, self.associations, self.links,
                    planning.antenna_of(antennas.get(referral)),
                )  # fmt: skip
                if mails:
                    log.info("status_mail_planned", status=status.status)
                planned.extend(mails)
        added = await self.store.enqueue(planned, states=states)
        if added:
            log.info("status_mails_recorded", new=added, planned=len(planned))
            self.wake()

    async def registration(self, received: Received[RegistrationV1]) -> None:
        """One e-mail to the person per registration event, keyed by the event's id."""
        registration = received.data
        with structlog.contextvars.bound_contextvars(
            registration_id=str(registration.registration_id)
        ):
            added = await self.store.enqueue(planning.for_registration(received.event))
            log.info("registration_mail_recorded", change=registration.change, new=added)
        if added:
            self.wake()

    async def invitation(self, received: Received[InvitationV1]) -> None:
        """One invitation e-mail per invitation (keyed by its id)."""
        added = await self.store.enqueue(planning.for_invitation(received.event))
        log.info("invitation_mail_recorded", new=added)
        if added:
            self.wake()

    async def community_mail(self, received: Received[CommunityMailV1]) -> None:
        """One e-mail per community mail (keyed by its `mail_id`); neither the address nor the
        text is logged."""
        added = await self.store.enqueue(planning.for_community_mail(received.event))
        log.info("community_mail_recorded", kind=received.data.kind, new=added)
        if added:
            self.wake()

    async def erasure(self, received: Received[ErasureRequestedV1]) -> None:
        """Erase every row of the reference, send nothing more, and tell each association
        that was (or may have been) handed its referral, on its topic, before the offset is
        committed."""
        request, trace = received.data, current_trace()

        def notices(holders: list[Holder]) -> list[Message]:
            return [
                messages.withdrawn(
                    request.reference,
                    holder.referral_id,
                    AssociationId(holder.association_id),
                    request.requested_at,
                    received.event.correlationid,
                    trace,
                )
                for holder in holders
            ]

        def told(holders: list[Holder], person: Person | None) -> list[NewDelivery]:
            return planning.for_erasure(
                holders, person, request.reference, request.requested_at,
                received.event.correlationid, self.associations, self.links.privacy_contact,
            )  # fmt: skip

        holders = await self.store.erase(request.reference, notices, told=told)
        await self.relay.flush([request.reference])
        log.info("erased", associations_told=[holder.association_id for holder in holders])
        self.wake()


def subscribe_all(
    broker: KafkaBroker,
    handlers: Handlers,
    settings: NotifierSettings,
    record_scope: RecordScope = no_scope,
) -> None:
    """Declare the notifier's subscribers on `broker`, one consumer group each."""
    dead = DeadLetters(broker, Service.NOTIFIER)
    group = settings.group_id
    batch = Batch(max_records=settings.batch_max_records, timeout_ms=settings.batch_timeout_ms)
    subscribe(
        broker, DECISIONS, handlers.decisions, dead_letters=dead, group_id=group, batch=batch,
        description="Publish each decision's referral, record its e-mails and webhook.",
        record_scope=record_scope,
    )  # fmt: skip
    subscribe(
        broker, REFERRAL_STATUS, handlers.statuses, dead_letters=dead,
        group_id=f"{group}.status",
        # Reminders and expiries are days apart: a status may wait for 64 KiB of others, or
        # aiokafka's default 500 ms, so that a busy notifier reads a few batches a second.
        batch=Batch(batch.max_records, batch.timeout_ms, fetch_min_bytes=64 * 1024),
        description="Turn reminders and expiries into e-mails to the association; keep each "
        "referral's latest status for the answer pages.",
        record_scope=record_scope,
    )  # fmt: skip
    one_by_one: list[tuple[Topic, SingleHandler[Any], str, str]] = [
        (REGISTRATIONS, handlers.registration, "registrations",
         "Record one e-mail to the person per registration event (confirmed, waitlisted, "
         "promoted, cancelled, conference changed)."),
        (INVITATIONS, handlers.invitation, "invitations",
         "Record one invitation e-mail per invitation."),
        (COMMUNITY_MAIL, handlers.community_mail, "community",
         "Send each e-mail the events service wrote about success stories and peer exchange "
         "once, keyed by its mail id."),
        (ERASURES, handlers.erasure, "erasures",
         "Erase the delivery rows of a person who withdrew, send nothing more, and tell each "
         "association holding the referral on its topic."),
    ]  # fmt: skip
    for topic, handler, suffix, description in one_by_one:
        subscribe(
            broker, topic, handler, dead_letters=dead, group_id=f"{group}.{suffix}",
            description=description, record_scope=record_scope,
        )  # fmt: skip
