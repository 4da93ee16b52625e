"""How every service makes its FastStream broker, so the producer guarantees are written once."""

from typing import Any

from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity

from rebond_kafka.settings import bootstrap_servers


def durable_broker(
    servers: str, client_id: str, *, security: BaseSecurity | None = None, **options: Any
) -> KafkaBroker:
    """A broker, not connected, to `servers` (comma-separated) as `client_id`. Its producer
    waits for every in-sync replica (acks=all), so a record Kafka acknowledged survives the
    loss of its leader, and is idempotent, so a send the producer retries is written once:
    the outboxes and intake's 202 rely on both. FastStream's own logger is off: the services
    log through structlog. `options` go to `KafkaBroker` as they are (a request timeout)."""
    return KafkaBroker(
        bootstrap_servers(servers),
        security=security,
        acks="all",
        enable_idempotence=True,
        client_id=client_id,
        logger=None,
        **options,
    )
