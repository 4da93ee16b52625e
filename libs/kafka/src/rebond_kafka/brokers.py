"""How every service makes its FastStream broker, so the producer guarantees are written once."""

from typing import TYPE_CHECKING, Any

from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.producer import AioKafkaFastProducerImpl
from faststream.security import BaseSecurity

from rebond_kafka.settings import bootstrap_servers

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer
    from fast_depends.library.serializer import SerializerProto
    from faststream._internal.parser import CodecProto


class _ClosingProducer(AioKafkaFastProducerImpl):
    """FastStream's producer, except that an aiokafka producer whose start fails is closed.

    FastStream (0.7) makes a new `AIOKafkaProducer` at each `broker.start()` and drops it, open,
    when its start raises (Kafka unreachable); `broker.stop()` cannot close it, since it never
    became the broker's. Each retry of a start during an outage then left one behind, which
    aiokafka reports when it is collected ("Unclosed AIOKafkaProducer", an error line per
    retry) along with the client it holds."""

    __slots__ = ()

    async def connect(
        self,
        producer: "AIOKafkaProducer",
        serializer: "SerializerProto | None",
        codec: "CodecProto | None" = None,
    ) -> None:
        try:
            await super().connect(producer, serializer, codec)
        except BaseException:
            await producer.stop()
            raise


def durable_broker(
    servers: str, client_id: str, *, security: BaseSecurity | None = None, **options: Any
) -> KafkaBroker:
    """A broker, not connected, to `servers` (comma-separated) as `client_id`. Its producer
    waits for every in-sync replica (acks=all), so a record Kafka acknowledged survives the
    loss of its leader, and is idempotent, so a send the producer retries is written once:
    the outboxes and intake's 202 rely on both. A start that fails (Kafka unreachable) closes
    the producer it opened (`_ClosingProducer`), so a service retrying its start leaks nothing.
    FastStream's own logger is off: the services log through structlog. `options` go to
    `KafkaBroker` as they are (a request timeout)."""
    broker = KafkaBroker(
        bootstrap_servers(servers),
        security=security,
        acks="all",
        enable_idempotence=True,
        client_id=client_id,
        logger=None,
        **options,
    )
    broker.config.broker_config.producer = _ClosingProducer(
        parser=options.get("parser"), decoder=options.get("decoder")
    )
    return broker
