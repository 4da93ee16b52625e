"""A broker instrumented for observability runs batch handlers on FastStream's in-memory test
broker too (it hands a batch over as a list, aiokafka as a tuple)."""

from typing import Any

from faststream.kafka import KafkaBroker, TestKafkaBroker

from rebond_observability import Observability


class Settings:
    otel_enabled = False
    otel_endpoint = ""


async def test_a_batch_handler_of_an_instrumented_broker_runs_in_the_test_broker() -> None:
    """The batch reaches its handler, each record left for the handler to scope."""
    broker = Observability("test", Settings()).instrument(KafkaBroker())
    batches: list[list[Any]] = []

    @broker.subscriber("a.topic", batch=True)
    async def handler(body: list[Any]) -> None:
        batches.append(body)

    async with TestKafkaBroker(broker) as test:
        await test.publish_batch(b"1", b"2", topic="a.topic")
    assert batches == [[1, 2]]
