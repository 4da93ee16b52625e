"""Kafka entry point: read the router's invitees (people who consented to invitations, with
only what an invitation needs: events never sees anyone else's decision), invite them.

At least once: the offset is committed only after the invitation is stored and published
(acks=all). A redelivered invitee finds the invitation already stored and publishes nothing
new. A record that cannot be read goes to `deadletter.events` and the partition keeps flowing.
"""

import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from starlette.concurrency import run_in_threadpool

from rebond_contracts.envelope import EnvelopeError
from rebond_contracts.topics import ERASURES, INVITEES, Service, dead_letters
from rebond_events import privacy
from rebond_events.outbox import Relay
from rebond_events.service import Conferences
from rebond_kafka.records import keep_raw, send_dead_letter

log = structlog.get_logger(__name__)
DEAD_LETTERS = dead_letters(Service.EVENTS)


def subscribe_invitees(
    broker: KafkaBroker, conferences: Conferences, relay: Relay, group_id: str
) -> None:
    dead = broker.publisher(
        DEAD_LETTERS.name, title=DEAD_LETTERS.name, description=DEAD_LETTERS.description,
        schema=DEAD_LETTERS.payload,
    )  # fmt: skip

    @broker.subscriber(
        INVITEES.name,
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=keep_raw,
        title=INVITEES.name,
        description="Invite people who consented to invitations to a nearby conference.",
    )
    async def on_invitee(msg: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message  # type: ignore[assignment]
        try:
            event = INVITEES.read(record.value, record.headers)
        except EnvelopeError as error:
            await send_dead_letter(dead, Service.EVENTS, record, str(error))
            return
        contact = event.data.contact
        with structlog.contextvars.bound_contextvars(reference=event.subject, event_id=event.id):
            invited = await run_in_threadpool(
                conferences.invite, event.data.reference, event.correlationid, contact
            )
            await relay.flush()  # raises if Kafka does not acknowledge: the invitee is re-read
            log.info("invitation_considered", invited=invited)

    @broker.subscriber(
        ERASURES.name,
        group_id=f"{group_id}.erasures",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=keep_raw,
        title=ERASURES.name,
        description="Delete the invitations of a person who withdrew.",
    )
    async def on_erasure(msg: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message  # type: ignore[assignment]
        try:
            event = ERASURES.read(record.value, record.headers)
        except EnvelopeError as error:
            await send_dead_letter(dead, Service.EVENTS, record, str(error))
            return
        with structlog.contextvars.bound_contextvars(reference=event.subject, event_id=event.id):
            await run_in_threadpool(privacy.erase, conferences.engine, event.data.reference)
