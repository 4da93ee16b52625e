"""The port through which intake hands an acknowledged submission to Kafka."""

from typing import Any, Protocol

import structlog
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.security import BaseSecurity

from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import ErasureRequestedV1, QuestionnaireCompletedV1
from rebond_contracts.topics import ERASURES, QUESTIONNAIRES
from rebond_kafka.brokers import durable_broker
from rebond_kafka.outage import KafkaLink
from rebond_kafka.startup import start_forever

log = structlog.get_logger(__name__)


class BrokerUnavailable(Exception):
    """Kafka did not acknowledge the submission: nothing may be claimed accepted."""


class SubmissionPublisher(Protocol):
    async def publish(self, event: Envelope[QuestionnaireCompletedV1]) -> None:
        """Return only once the event is durably in Kafka; else raise BrokerUnavailable (the
        caller bounds how long it waits, `submissions.Submissions`)."""

    async def publish_erasure(self, event: Envelope[ErasureRequestedV1]) -> None:
        """The same, for a person's erasure request on `privacy.erasures`."""

    def ready(self) -> bool: ...


def build_broker(
    bootstrap_servers: str, *, security: BaseSecurity | None = None, request_timeout_ms: int = 5000
) -> KafkaBroker:
    """An idempotent producer that waits for every in-sync replica (acks=all)."""
    return durable_broker(
        bootstrap_servers, "rebond-intake", security=security, request_timeout_ms=request_timeout_ms
    )


class KafkaSubmissionPublisher:
    """Publishes through `broker`; ready once it started and while `link` (when given) does not
    say Kafka is down. While it is down a submission is refused at once: the person gets the
    503 without waiting for the timeout, and nothing is left in the producer to go out later."""

    def __init__(self, broker: KafkaBroker, link: KafkaLink | None = None) -> None:
        self._broker = broker
        self._link = link
        self._connected = False
        self._publisher: DefaultPublisher = broker.publisher(
            QUESTIONNAIRES.name,
            title=QUESTIONNAIRES.name,
            description=QUESTIONNAIRES.description,
            schema=QUESTIONNAIRES.payload,
        )
        self._erasures: DefaultPublisher = broker.publisher(
            ERASURES.name,
            title=ERASURES.name,
            description=ERASURES.description,
            schema=ERASURES.payload,
        )

    async def connect_forever(self, max_backoff_s: float = 10.0) -> None:
        """Connect, retrying with backoff, so intake starts (and says 503) while Kafka is down."""
        await start_forever(self._broker, max_backoff_s, log=log, link=self._link)
        self._connected = True

    def ready(self) -> bool:
        return self._connected and not (self._link is not None and self._link.down)

    async def publish(self, event: Envelope[QuestionnaireCompletedV1]) -> None:
        await self._send(self._publisher, event)

    async def publish_erasure(self, event: Envelope[ErasureRequestedV1]) -> None:
        await self._send(self._erasures, event)

    async def _send(self, publisher: DefaultPublisher, event: Envelope[Any]) -> None:
        if not self.ready():
            raise BrokerUnavailable("not connected to Kafka")
        try:
            await publisher.publish(
                event.kafka_value(),
                key=event.subject.encode(),
                headers=event.kafka_headers(),
                correlation_id=event.correlationid,
            )
        except (KafkaError, OSError) as error:
            raise BrokerUnavailable(type(error).__name__) from error

    async def close(self) -> None:
        await self._broker.stop()
