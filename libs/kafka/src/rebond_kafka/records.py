"""Consumed records as the handlers take them: raw-bytes decoders, and dead letters."""

from typing import Protocol, TypedDict

import structlog
from faststream.kafka import KafkaMessage

from rebond_contracts.topics import KafkaRecord, Service, dead_letter_event

log = structlog.get_logger(__name__)


class Publisher(Protocol):
    """What publishes a dead letter (FastStream's Kafka publisher fits)."""

    async def publish(
        self, message: bytes, *, key: bytes | None, headers: dict[str, str]
    ) -> object: ...


class DeadLetter(TypedDict):
    """The arguments `dead_letter` gives `Publisher.publish`."""

    message: bytes
    key: bytes | None
    headers: dict[str, str]


async def keep_raw(msg: KafkaMessage) -> bytes:
    """Hand the handler the raw bytes: the contract reads (and judges) them. FastStream's own
    decoder would raise on a `content-type: application/json` record that is not JSON before the
    handler runs, and the nack would re-read it forever, stopping the partition; with the raw
    bytes the handler dead-letters it instead.

    Handlers declare their payload as `SkipValidation[Model]` only for the AsyncAPI document.
    """
    return bytes(msg.body)


async def keep_raw_batch(msg: KafkaMessage) -> list[bytes]:
    """`keep_raw` for a batch: each record's bytes, judged by the handler."""
    return [bytes(record.value or b"") for record in msg.raw_message]  # type: ignore[union-attr]


def dead_letter(service: Service, record: KafkaRecord, error: str) -> DeadLetter:
    """Arguments for publishing `record` to `service`'s dead-letter topic: the original record
    inside, the dead letter's own CloudEvents headers outside (`dead_letter_event`), and the
    failed record's trace, if any, carried on."""
    event = dead_letter_event(service, record, error)
    headers = {**event.kafka_headers(), "x-error": error[:500]}
    if traceparent := dict(record.headers).get("traceparent"):
        headers["traceparent"] = traceparent.decode("ascii", "replace")
    return {"message": event.kafka_value(), "key": record.key, "headers": headers}


async def send_dead_letter(
    publisher: Publisher, service: Service, record: KafkaRecord, error: str
) -> None:
    """Publish `record` to `service`'s dead-letter topic through `publisher` (`dead_letter`),
    then log `dead_lettered` with where it was read and the error's first 300 characters."""
    await publisher.publish(**dead_letter(service, record, error))
    log.warning(
        "dead_lettered", topic=record.topic, partition=record.partition, offset=record.offset,
        error=error[:300],
    )  # fmt: skip
