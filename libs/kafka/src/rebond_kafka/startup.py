"""Start a Kafka broker, retrying with a growing, capped, jittered delay while Kafka is
unreachable."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from aiokafka.errors import KafkaError

from rebond_kafka.backoff import Backoff
from rebond_kafka.outage import KafkaLink

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
    link: KafkaLink | None = None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Start `broker`, retrying while Kafka is unreachable (`backoff`: by default 0.5 s,
    doubling up to `max_backoff_s`, each ±20 % so that services started together do not knock
    together), then log `kafka_connected` on `log` (the caller's logger, so the line names the
    service's module).

    Each failure is told to `link` when there is one (it logs the outage once, then a summary
    every 30 s, and its end, and `/readyz` reads it), else logged as `kafka_unreachable` on
    `log`. `sleep` is injectable so tests see the delays without waiting for them."""
    backoff = backoff or Backoff(first_s=min(0.5, max_backoff_s), cap_s=max_backoff_s)
    while True:
        try:
            await broker.start()
        except (KafkaError, OSError) as error:
            await broker.stop()
            delay = backoff.next_delay()
            if link is not None:
                link.unreachable(delay, cause=type(error).__name__)
            else:
                log.warning("kafka_unreachable", error=type(error).__name__, retry_in_s=delay)
            await sleep(delay)
        else:
            if link is not None:
                link.reachable()
            log.info("kafka_connected")
            return
