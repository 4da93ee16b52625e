"""start_forever: retries with capped, doubling backoff while Kafka is unreachable, then returns."""

import pytest
import structlog
from aiokafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from rebond_kafka.startup import start_forever


class FlakyBroker:
    """A broker whose `start` raises `errors` in turn, then succeeds; counts starts and stops."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.starts = self.stops = 0

    async def start(self) -> None:
        self.starts += 1
        if self.errors:
            raise self.errors.pop(0)

    async def stop(self) -> None:
        self.stops += 1


class FakeSleep(list[float]):
    """Records the backoff delays asked for, without waiting for them."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)


async def test_two_failures_then_connected() -> None:
    """Kafka refuses twice: each failure stops the half-started broker and waits (0.5 s, then
    1 s); the third start succeeds and start_forever returns."""
    broker, sleeps = FlakyBroker(KafkaConnectionError(), OSError("refused")), FakeSleep()
    await start_forever(broker, sleep=sleeps)
    assert (broker.starts, broker.stops) == (3, 2)
    assert sleeps == [0.5, 1.0]


async def test_the_backoff_doubles_up_to_the_cap() -> None:
    """The delay doubles from 0.5 s and stays at `max_backoff_s`."""
    broker, sleeps = FlakyBroker(*(OSError() for _ in range(6))), FakeSleep()
    await start_forever(broker, max_backoff_s=3.0, sleep=sleeps)
    assert sleeps == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


async def test_logs_each_failure_and_the_connection() -> None:
    """`kafka_unreachable` per failure (error class, next delay), then `kafka_connected`."""
    broker = FlakyBroker(KafkaConnectionError(), OSError())
    with capture_logs() as logs:
        await start_forever(broker, sleep=FakeSleep(), log=structlog.get_logger("test"))
    assert [(e["event"], e["log_level"], e.get("error"), e.get("retry_in_s")) for e in logs] == [
        ("kafka_unreachable", "warning", "KafkaConnectionError", 0.5),
        ("kafka_unreachable", "warning", "OSError", 1.0),
        ("kafka_connected", "info", None, None),
    ]


async def test_other_errors_are_not_retried() -> None:
    """A bug (not Kafka or the network) propagates at once instead of looping forever."""
    broker, sleeps = FlakyBroker(ValueError("bad config")), FakeSleep()
    with pytest.raises(ValueError, match="bad config"):
        await start_forever(broker, sleep=sleeps)
    assert (broker.starts, sleeps) == (1, [])
