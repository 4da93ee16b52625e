"""Writing a contract's event to Kafka from a test, as the topic's writer does."""

from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from rebond_contracts.envelope import Envelope


async def publish_event(
    bootstrap: str, topic: str, event: Envelope[BaseModel], key: str, **client: Any
) -> None:
    """Publish `event` on `topic` as a service does: a binary-mode CloudEvent (the payload as
    the value, its `ce_*` attributes as headers) keyed by `key`, acknowledged by every in-sync
    replica by an idempotent producer; returns once Kafka has it. `client` adds aiokafka
    options (a principal's SASL settings on the secured listener)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **client
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            event.kafka_value(),
            key=key.encode(),
            headers=[(name, value.encode()) for name, value in event.kafka_headers().items()],
        )
    finally:
        await producer.stop()
