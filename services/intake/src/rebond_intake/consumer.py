"""Kafka entry point: keep each reference's submission, decisions, referral statuses and
deliveries.

At-least-once: the offset is committed only once the record is stored (duplicates are dropped by
event id). A record that cannot be read goes to `deadletter.intake` and the partition flows on.
Intake's own `questionnaires.completed` comes back in batches, one store transaction each, and
only its reference and time are read (`ReceivedView`): the answers are the router's business.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.security import BaseSecurity
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SkipValidation

from rebond_contracts.envelope import EnvelopeError
from rebond_contracts.payloads import REFERENCE_PATTERN, QuestionnaireCompletedV1
from rebond_contracts.topics import (
    DECISIONS,
    DELIVERIES,
    QUESTIONNAIRES,
    REFERRAL_STATUS,
    Service,
    Topic,
    dead_letter_event,
    dead_letters,
)
from rebond_intake.store import StatusStore, StoreUnavailable
from rebond_intake.timeline import Record, received, record_of

log = structlog.get_logger(__name__)
DEAD_LETTERS = dead_letters(Service.INTAKE)
T = TypeVar("T")
CONSUMED = (DECISIONS, REFERRAL_STATUS, DELIVERIES)


class ReceivedView(BaseModel):
    """What the status needs of a questionnaire event (the answers are skipped)."""

    model_config = ConfigDict(extra="ignore")

    reference: str = Field(pattern=REFERENCE_PATTERN)
    received_at: AwareDatetime


def build_consumer(
    bootstrap_servers: str,
    store: StatusStore,
    *,
    group_id: str = "rebond-intake",
    security: BaseSecurity | None = None,
    auto_offset_reset: Literal["latest", "earliest", "none"] = "earliest",
    batch_max_records: int = 500,
    batch_timeout_ms: int = 50,
) -> KafkaBroker:
    """A broker whose subscribers store every status event of the four topics."""
    broker = KafkaBroker(
        bootstrap_servers,
        security=security,
        acks="all",
        enable_idempotence=True,
        client_id="rebond-intake-status",
        logger=None,
    )
    dead = broker.publisher(
        DEAD_LETTERS.name, title=DEAD_LETTERS.name, description=DEAD_LETTERS.description,
        schema=DEAD_LETTERS.payload,
    )  # fmt: skip

    for topic in CONSUMED:
        broker.subscriber(
            topic.name,
            group_id=group_id,
            auto_offset_reset=auto_offset_reset,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=keep_raw,
            title=f"intake:{topic.name}",
            description=f"Keep {topic.name} for the person's status timeline.",
        )(_handler(topic, store, dead))

    @broker.subscriber(
        QUESTIONNAIRES.name,
        group_id=group_id,
        auto_offset_reset=auto_offset_reset,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        batch=True,
        max_records=batch_max_records,
        batch_timeout_ms=batch_timeout_ms,
        decoder=keep_raw_batch,
        title=f"intake:{QUESTIONNAIRES.name}",
        description="Each submission, read back: the status shows it received.",
    )
    async def on_questionnaires(
        body: SkipValidation[QuestionnaireCompletedV1], msg: KafkaMessage
    ) -> None:
        # `body` is the batch's raw bytes, typed per record for the AsyncAPI document.
        batch: tuple[ConsumerRecord[bytes, bytes], ...] = msg.raw_message  # type: ignore[assignment]
        records: list[Record] = []
        for record in batch:
            try:
                event = QUESTIONNAIRES.read(record.value, record.headers, view=ReceivedView)
            except EnvelopeError as error:
                await dead.publish(**dead_letter(record, str(error)))
                log.warning(
                    "dead_lettered", topic=record.topic, offset=record.offset, error=str(error)
                )
                continue
            records.append(received(event.id, event.data.reference, event.data.received_at))
        added = await patiently(lambda: store.add_many(records))
        log.info("submissions_stored", records=len(records), new=added)

    return broker


def _handler(topic: Topic, store: StatusStore, dead: Any) -> Any:
    async def handle(msg: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message
        try:
            event = topic.read(record.value, record.headers)
        except EnvelopeError as error:
            await dead.publish(**dead_letter(record, str(error)))
            log.warning("dead_lettered", topic=record.topic, offset=record.offset, error=str(error))
            return
        with structlog.contextvars.bound_contextvars(reference=event.subject, event_id=event.id):
            added = await patiently(lambda: store.add(record_of(event.id, event.data)))
            log.info("status_stored" if added else "status_duplicate", topic=record.topic)

    return handle


async def patiently(
    write: Callable[[], Awaitable[T]],
    *,
    first_delay_s: float = 0.5,
    max_delay_s: float = 10.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`write`, tried again with capped backoff while the store is unavailable. The partition
    waits for the store (nothing is lost, nothing dead-lettered: the record is fine); without
    the wait, the nack would re-read the record at once, in a hot loop, until it comes back."""
    delay = first_delay_s
    while True:
        try:
            return await write()
        except StoreUnavailable as error:
            log.warning("store_unavailable", error=str(error), retry_in_s=delay)
            await sleep(delay)
            delay = min(delay * 2, max_delay_s)


async def keep_raw(msg: KafkaMessage) -> bytes:
    """Hand the handler the raw bytes: the contract reads (and judges) them. FastStream's own
    decoder would raise on a `content-type: application/json` record that is not JSON before the
    handler runs, and the nack would re-read it forever, stopping the partition."""
    return bytes(msg.body)


async def keep_raw_batch(msg: KafkaMessage) -> list[bytes]:
    """`keep_raw` for a batch: each record's bytes, judged by the handler."""
    return [bytes(record.value or b"") for record in msg.raw_message]  # type: ignore[union-attr]


def dead_letter(record: "ConsumerRecord[bytes, bytes]", error: str) -> dict[str, object]:
    """Arguments for publishing `record` to the dead-letter topic: the original record inside,
    the dead letter's own CloudEvents headers outside (`dead_letter_event`), and the failed
    record's trace, if any, carried on."""
    event = dead_letter_event(Service.INTAKE, record, error)
    headers = {**event.kafka_headers(), "x-error": error[:500]}
    if traceparent := dict(record.headers).get("traceparent"):
        headers["traceparent"] = traceparent.decode("ascii", "replace")
    return {"message": event.kafka_value(), "key": record.key, "headers": headers}
