"""Kafka entry point: read a routing decision, publish its referral to the association's topic.

Each association reads only `referrals.<association_id>`. The referral keeps the decision's
correlation id and uses the CloudEvents binary binding, so kcat, Java or Node can read it.
At-least-once: the offset is committed after the referral is acknowledged; the referral's event
id is its referral id, so a redelivered decision is recognisable downstream.
"""

from datetime import UTC, datetime

import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import EnvelopeError
from rebond_contracts.payloads import DeadLetterV1
from rebond_contracts.topics import DECISIONS, Service, dead_letters, referrals
from rebond_notifier.settings import NotifierSettings

log = structlog.get_logger(__name__)
DEAD_LETTERS = dead_letters(Service.NOTIFIER)


def build_broker(settings: NotifierSettings) -> KafkaBroker:
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        client_id="rebond-notifier",
        logger=None,
    )
    referral_publishers = {
        association: broker.publisher(
            topic.name, title=topic.name, description=topic.description, schema=topic.payload
        )
        for association in AssociationId
        for topic in [referrals(association)]
    }
    dead = broker.publisher(
        DEAD_LETTERS.name, title=DEAD_LETTERS.name, description=DEAD_LETTERS.description,
        schema=DEAD_LETTERS.payload,
    )  # fmt: skip

    @broker.subscriber(
        DECISIONS.name,
        group_id=settings.group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=DECISIONS.name,
        description="Send each decision's referral to its association.",
    )
    async def on_decision(msg: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message  # type: ignore[assignment]
        try:
            event = DECISIONS.read(record.value, record.headers)
        except EnvelopeError as error:
            await dead.publish(**dead_letter(record, str(error)))
            log.warning("dead_lettered", topic=record.topic, offset=record.offset, error=str(error))
            return
        referral = event.data.referral
        with structlog.contextvars.bound_contextvars(reference=event.subject, event_id=event.id):
            if referral is None:
                log.info("no_referral", reason="no consent to share")
                return
            topic = referrals(referral.association_id)
            out = topic.envelope(
                referral, subject=event.subject, correlationid=event.correlationid,
                id=str(referral.referral_id),
            )  # fmt: skip
            await referral_publishers[referral.association_id].publish(
                out.kafka_value(), key=record.key, headers=out.kafka_headers(),
                correlation_id=out.correlationid,
            )  # fmt: skip
            log.info("referral_published", association=referral.association_id)

    return broker


def dead_letter(record: "ConsumerRecord[bytes, bytes]", error: str) -> dict[str, object]:
    """Arguments for publishing `record` to the dead-letter topic."""
    headers = {name: raw.decode("utf-8", "replace") for name, raw in record.headers}
    letter = DeadLetterV1(
        service=Service.NOTIFIER.value,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode("utf-8", "replace") if record.key is not None else None,
        value=(record.value or b"").decode("utf-8", "replace"),
        headers=headers,
        error=error,
        failed_at=datetime.now(UTC),
    )
    return {
        "message": letter.model_dump_json().encode(),
        "key": record.key,
        "headers": {**headers, "content-type": "application/json", "x-error": error[:500]},
    }
