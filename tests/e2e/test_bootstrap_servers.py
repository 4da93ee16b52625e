"""Every Kafka connection a service makes accepts a cluster's list of bootstrap servers
(`<PREFIX>_KAFKA_BOOTSTRAP_SERVERS=a:9092,b:9092,c:9092`, as compose and a three-node cluster
give it), the first of them down."""

import asyncio
from collections.abc import Callable

import pytest
from faststream.kafka import KafkaBroker

from rebond_events.app import build_broker as events_broker
from rebond_events.settings import EventsSettings
from rebond_intake.consumer import build_consumer as intake_status_consumer
from rebond_intake.publisher import build_broker as intake_publisher
from rebond_notifier.consumer import build_broker as notifier_broker
from rebond_notifier.settings import NotifierSettings
from rebond_router.consumer import new_broker as router_broker
from rebond_router.settings import RouterSettings
from rebond_testing import free_port

pytestmark = pytest.mark.kafka


#: Each service's broker as its composition root builds it, from the bootstrap setting alone.
BUILDERS: dict[str, Callable[[str], KafkaBroker]] = {
    "intake publisher": intake_publisher,
    "intake status consumer": lambda servers: intake_status_consumer(servers, None),  # type: ignore[arg-type]
    "router": lambda servers: router_broker(RouterSettings(kafka_bootstrap_servers=servers)),
    "notifier": lambda servers: notifier_broker(NotifierSettings(kafka_bootstrap_servers=servers)),
    "events": lambda servers: events_broker(EventsSettings(kafka_bootstrap_servers=servers)),
}


@pytest.mark.parametrize("service", BUILDERS)
async def test_a_service_connects_through_a_list_of_bootstrap_servers(
    service: str, kafka_bootstrap: str
) -> None:
    """Given `<a closed port>,<the broker>`, the service's broker connects (FastStream took the
    whole string for one host name, which does not resolve, and never connected)."""
    broker = BUILDERS[service](f"127.0.0.1:{free_port()},{kafka_bootstrap}")
    try:
        await asyncio.wait_for(broker.connect(), 30)
        assert await broker.ping(timeout=10)
    finally:
        await broker.stop()
