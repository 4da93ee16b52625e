import pytest

from rebond_kafka.backoff import Backoff
from rebond_kafka.brokers import durable_broker
from rebond_kafka.startup import start_forever
from rebond_testing import free_port
from rebond_testing.leaks import unclosed_clients


def test_a_durable_broker_waits_for_every_replica_and_writes_a_retried_send_once() -> None:
    """The producer of every service's broker is acks=all and idempotent, to the servers given."""
    broker = durable_broker(" a:9092 , b:9092", "rebond-test", request_timeout_ms=5000)
    kwargs = broker._connection_kwargs
    assert kwargs["acks"] == "all" and kwargs["enable_idempotence"] is True
    assert kwargs["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert kwargs["client_id"] == "rebond-test" and kwargs["request_timeout_ms"] == 5000


class _Enough(Exception):
    """Ends `start_forever` after a few failed starts."""


async def test_starts_retried_against_an_unreachable_kafka_leave_no_producer_unclosed() -> None:
    """Three failed starts (nothing listens on the bootstrap port) leave no open aiokafka
    producer behind: no "Unclosed AIOKafkaProducer" warning nor loop error once collected."""
    broker = durable_broker(f"127.0.0.1:{free_port()}", "rebond-test", request_timeout_ms=2000)
    broker.publisher("rebond.test")
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        if len(sleeps) == 3:
            raise _Enough

    with unclosed_clients() as unclosed, pytest.raises(_Enough):
        await start_forever(broker, sleep=sleep, backoff=Backoff(first_s=0.01, jitter=0))
    assert len(sleeps) == 3 and unclosed == []
