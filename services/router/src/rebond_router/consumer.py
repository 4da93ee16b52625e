"""Kafka entry point: read a questionnaire, decide (pure), publish the decision.

At-least-once: the offset is committed only after the decision is acknowledged by Kafka
(acks=all, idempotent producer). A record that cannot be read goes to `deadletter.router` with
the error and its original headers, and the partition keeps flowing.
"""

from datetime import UTC, datetime

import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from rebond_contracts.envelope import EnvelopeError
from rebond_contracts.payloads import DeadLetterV1
from rebond_contracts.topics import DECISIONS, QUESTIONNAIRES, Service, dead_letters
from rebond_router.rules import decide
from rebond_router.settings import RouterSettings

log = structlog.get_logger(__name__)
DEAD_LETTERS = dead_letters(Service.ROUTER)


def build_broker(settings: RouterSettings) -> KafkaBroker:
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        client_id="rebond-router",
        logger=None,
    )
    decisions = broker.publisher(
        DECISIONS.name,
        title=DECISIONS.name,
        description=DECISIONS.description,
        schema=DECISIONS.payload,
    )
    dead = broker.publisher(
        DEAD_LETTERS.name, title=DEAD_LETTERS.name, description=DEAD_LETTERS.description,
        schema=DEAD_LETTERS.payload,
    )  # fmt: skip

    @broker.subscriber(
        QUESTIONNAIRES.name,
        group_id=settings.group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=QUESTIONNAIRES.name,
        description="Orient each questionnaire to an association.",
    )
    async def on_questionnaire(msg: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message  # type: ignore[assignment]
        try:
            event = QUESTIONNAIRES.read(record.value, record.headers)
        except EnvelopeError as error:
            await dead.publish(**dead_letter(record, str(error)))
            log.warning("dead_lettered", topic=record.topic, offset=record.offset, error=str(error))
            return
        with structlog.contextvars.bound_contextvars(reference=event.subject, event_id=event.id):
            decision = decide(event.id, event.data, datetime.now(UTC))
            out = DECISIONS.envelope(
                decision, subject=event.subject, correlationid=event.correlationid,
                id=str(decision.decision_id),
            )  # fmt: skip
            await decisions.publish(
                out.kafka_value(), key=record.key, headers=out.kafka_headers(),
                correlation_id=out.correlationid,
            )  # fmt: skip
            log.info("decided", association=decision.primary, rule_set=decision.rule_set_version)

    return broker


def dead_letter(record: "ConsumerRecord[bytes, bytes]", error: str) -> dict[str, object]:
    """Arguments for publishing `record` to the dead-letter topic."""
    headers = {name: raw.decode("utf-8", "replace") for name, raw in record.headers}
    letter = DeadLetterV1(
        service=Service.ROUTER.value,
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
