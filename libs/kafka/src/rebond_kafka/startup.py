"""Start a Kafka broker, retrying with capped backoff while Kafka is unreachable."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from aiokafka.errors import KafkaError

_log = structlog.get_logger(__name__)


class Startable(Protocol):
    """What is started and stopped (FastStream's `KafkaBroker` fits)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


async def start_forever(
    broker: Startable,
    max_backoff_s: float = 10.0,
    *,
    log: Any = _log,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Start `broker`, retrying with backoff (0.5 s, doubling up to `max_backoff_s`) while Kafka
    is unreachable; each failure logs `kafka_unreachable`, success `kafka_connected`, on `log`
    (the caller's logger, so the lines keep naming the service's module). `sleep` is injectable
    so tests see the delays without waiting for them."""
    backoff = 0.5
    while True:
        try:
            await broker.start()
        except (KafkaError, OSError) as error:
            log.warning("kafka_unreachable", error=type(error).__name__, retry_in_s=backoff)
            await broker.stop()
            await sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
        else:
            log.info("kafka_connected")
            return
