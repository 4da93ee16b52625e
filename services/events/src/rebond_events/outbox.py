"""The outbox relay: publishes stored events to Kafka, in order, and marks them sent.

An event is marked sent only after Kafka acknowledged it (acks=all, idempotent producer). A
crash between the two republishes it with the same `ce_id`: readers deduplicate by event id.
"""

import asyncio
from collections.abc import Callable
from typing import Protocol

import structlog
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher import DefaultPublisher
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from rebond_contracts.topics import CONFERENCES, INVITATIONS, REGISTRATIONS, Topic
from rebond_events.service import Conferences, Outbound

log = structlog.get_logger(__name__)

#: The topics this service writes (writer = events in the registry).
PUBLISHED: tuple[Topic, ...] = (CONFERENCES, REGISTRATIONS, INVITATIONS)


class Sink(Protocol):
    async def send(self, event: Outbound) -> None:
        """Return once the event is durably in Kafka; raise otherwise."""


def declare_publishers(broker: KafkaBroker) -> dict[str, DefaultPublisher]:
    """One FastStream publisher per topic written, declared from the registry (AsyncAPI)."""
    return {
        topic.name: broker.publisher(
            topic.name, title=topic.name, description=topic.description, schema=topic.payload
        )
        for topic in PUBLISHED
    }


class KafkaSink:
    def __init__(self, publishers: dict[str, DefaultPublisher], timeout_s: float = 10.0) -> None:
        self._publishers = publishers
        self._timeout_s = timeout_s

    async def send(self, event: Outbound) -> None:
        async with asyncio.timeout(self._timeout_s):
            await self._publishers[event.topic].publish(
                event.value,
                key=event.key,
                headers=event.headers,
                correlation_id=event.correlation_id,
            )


class Relay:
    def __init__(
        self, conferences: Conferences, sink: Sink, connected: Callable[[], bool] = lambda: True
    ) -> None:
        self._conferences = conferences
        self._sink = sink
        self._connected = connected
        self._lock = asyncio.Lock()
        self._soon: set[asyncio.Task[None]] = set()

    async def flush(self) -> int:
        """Publish every pending event in order; raise if Kafka does not acknowledge one."""
        sent = 0
        async with self._lock:
            while batch := await run_in_threadpool(self._conferences.pending):
                done: list[int] = []
                try:
                    for event in batch:
                        await self._sink.send(event)
                        done.append(event.seq)
                finally:
                    await run_in_threadpool(self._conferences.mark_sent, done)
                sent += len(done)
        return sent

    async def flush_quietly(self) -> None:
        """After a request: publish now if Kafka answers; else the background loop retries."""
        if not self._connected():
            return
        try:
            await self.flush()
        except (KafkaError, TimeoutError, OSError, SQLAlchemyError) as error:
            log.warning("outbox_pending", error=type(error).__name__)

    def flush_soon(self) -> None:
        """Publish in the background, after the reply: a registration's answer then takes as
        long whether it wrote an e-mail to send or not (a repeat within `RESEND_AFTER` writes
        none), so its timing does not tell whether an address was registered."""
        task = asyncio.create_task(self.flush_quietly())
        self._soon.add(task)
        task.add_done_callback(self._soon.discard)

    async def settled(self) -> None:
        """Wait for the background publishes started so far (tests, shutdown)."""
        while self._soon:
            await asyncio.gather(*self._soon)

    async def close(self) -> None:
        """Stop the background publishes (at shutdown): what they had not sent stays in the
        outbox, for the next start."""
        for task in self._soon:
            task.cancel()
        await asyncio.gather(*self._soon, return_exceptions=True)

    async def run_forever(self, interval_s: float) -> None:
        while True:
            await self.flush_quietly()
            await asyncio.sleep(interval_s)
