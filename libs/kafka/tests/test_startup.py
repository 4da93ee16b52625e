"""start_forever: retries with a growing, capped, jittered delay while Kafka is unreachable,
then returns; with a link, the outage is said once instead of once per failure."""

import pytest
import structlog
from aiokafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from rebond_kafka.backoff import Backoff
from rebond_kafka.outage import Impact, KafkaLink
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
    """Kafka refuses twice: each failure stops the half-started broker and waits; the third
    start succeeds and start_forever returns."""
    broker, sleeps = FlakyBroker(KafkaConnectionError(), OSError("refused")), FakeSleep()
    await start_forever(broker, sleep=sleeps, backoff=Backoff(first_s=0.5, jitter=0))
    assert (broker.starts, broker.stops) == (3, 2)
    assert sleeps == [0.5, 1.0]


async def test_the_delay_grows_jittered_up_to_the_cap() -> None:
    """By default the delay doubles from 0.5 s up to `max_backoff_s`, each within ±20 %."""
    broker, sleeps = FlakyBroker(*(OSError() for _ in range(8))), FakeSleep()
    await start_forever(broker, max_backoff_s=3.0, sleep=sleeps)
    steps = [0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    assert all(0.8 * s <= d <= min(3.0, 1.2 * s) for d, s in zip(sleeps, steps, strict=True))


async def test_without_a_link_each_failure_and_the_connection_are_logged() -> None:
    """`kafka_unreachable` per failure (error class, next delay), then `kafka_connected`."""
    broker = FlakyBroker(KafkaConnectionError(), OSError())
    with capture_logs() as logs:
        await start_forever(
            broker, sleep=FakeSleep(), log=structlog.get_logger("test"),
            backoff=Backoff(first_s=0.5, jitter=0),
        )  # fmt: skip
    assert [(e["event"], e["log_level"], e.get("error"), e.get("retry_in_s")) for e in logs] == [
        ("kafka_unreachable", "warning", "KafkaConnectionError", 0.5),
        ("kafka_unreachable", "warning", "OSError", 1.0),
        ("kafka_connected", "info", None, None),
    ]


async def test_with_a_link_the_failures_make_one_outage_ended_by_the_start() -> None:
    """Six failed starts are one outage on the link (one error line, not six warnings); the
    start that succeeds ends it."""
    link = KafkaLink("127.0.0.1:1", Impact(fr="x", en="x"), log=structlog.get_logger("link"))
    broker = FlakyBroker(*(KafkaConnectionError() for _ in range(6)))
    with capture_logs() as logs:
        await start_forever(broker, sleep=FakeSleep(), log=structlog.get_logger("test"), link=link)
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("kafka_unreachable", "error"),
        ("kafka_reachable_again", "info"),
        ("kafka_connected", "info"),
    ]
    assert logs[0]["error"] == "KafkaConnectionError"
    assert (link.down, link.outages) == (False, 1)


async def test_other_errors_are_not_retried() -> None:
    """A bug (not Kafka or the network) propagates at once instead of looping forever."""
    broker, sleeps = FlakyBroker(ValueError("bad config")), FakeSleep()
    with pytest.raises(ValueError, match="bad config"):
        await start_forever(broker, sleep=sleeps)
    assert (broker.starts, sleeps) == (1, [])
