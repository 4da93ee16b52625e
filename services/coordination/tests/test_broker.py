"""The console's Kafka client: durable, and nothing left open while Kafka is away."""

import pytest
from aiokafka.errors import KafkaConnectionError

from rebond_coordination.kafka import build_broker
from rebond_coordination.settings import CoordinationSettings
from rebond_testing import free_port
from rebond_testing.leaks import unclosed_clients


async def test_the_broker_is_durable_and_a_failed_start_leaves_no_producer_open() -> None:
    """The console's producer is acks=all and idempotent with a 10 s request timeout, to each
    bootstrap server of a comma-separated list, and a start against an unreachable Kafka
    leaves no unclosed producer behind."""
    servers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    broker = build_broker(CoordinationSettings(kafka_bootstrap_servers=",".join(servers)))
    kwargs = broker._connection_kwargs
    assert (kwargs["acks"], kwargs["enable_idempotence"]) == ("all", True)
    assert (kwargs["request_timeout_ms"], kwargs["client_id"]) == (10_000, "rebond-coordination")
    assert kwargs["bootstrap_servers"] == servers
    with unclosed_clients() as unclosed:
        with pytest.raises(KafkaConnectionError):
            await broker.start()
        await broker.stop()
    assert unclosed == []
