"""Publishing the events outbox (`rebond_sql.outbox`) to Kafka: right after the change that
wrote it, and once it has waited `EVENTS_OUTBOX_INTERVAL_S` for what is left (Kafka was down,
an instance stopped between its commit and its publication).

The periodic task does not read the outbox at that pace when nothing waits: it sleeps until
the oldest waiting message is due (`Relay.stale_at`), and a publication of this process that
could not go out wakes it; only another instance's leftovers wait for `IDLE_CHECK_S`.

A message is deleted only once Kafka acknowledged it (acks=all, idempotent producer); one that
is published twice keeps its `ce_id`, which readers deduplicate by.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from datetime import timedelta
from typing import Concatenate, Generic, TypeAlias, TypeVar

import structlog
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher import DefaultPublisher
from sqlalchemy.exc import SQLAlchemyError

from rebond_contracts.topics import (
    COMMUNITY_MAIL,
    CONFERENCES,
    INVITATIONS,
    PEER_MATCHES,
    REGISTRATIONS,
    Topic,
)
from rebond_events.ports import Outcome
from rebond_events.store import Store
from rebond_events.tables import OUTBOX
from rebond_sql.outbox import Message, Relay, Send
from rebond_sql.types import Clock

log = structlog.get_logger(__name__)
T = TypeVar("T")
R = TypeVar("R")
#: A use case of `R` (a view of the store): its other arguments are bound, or given by `_apply`.
UseCase: TypeAlias = Callable[Concatenate[R, ...], Outcome[T]]

#: The longest the periodic task sleeps when no message waits: how late a message another
#: instance wrote and then could not publish (it stopped) may be found.
IDLE_CHECK_S = 60.0

#: The topics this service writes (writer = events in the registry).
PUBLISHED: tuple[Topic, ...] = (
    CONFERENCES, REGISTRATIONS, INVITATIONS, COMMUNITY_MAIL, PEER_MATCHES,
)  # fmt: skip


class KafkaSend:
    """`rebond_sql.outbox.Send` through one declared FastStream publisher per topic written
    (so the AsyncAPI document lists them, from the registry)."""

    def __init__(self, broker: KafkaBroker, timeout_s: float = 10.0) -> None:
        self.publishers: dict[str, DefaultPublisher] = {
            topic.name: broker.publisher(
                topic.name, title=topic.name, description=topic.description, schema=topic.payload
            )
            for topic in PUBLISHED
        }
        self.timeout_s = timeout_s

    async def send(self, message: Message) -> Awaitable[object]:
        """Hand the record to the producer within `timeout_s` (a broker that stopped answering
        must not hold the outbox); the future returned completes on Kafka's acknowledgement, or
        fails after the producer's own request timeout. No task per message: the relay awaits
        the producer's futures themselves."""
        async with asyncio.timeout(self.timeout_s):
            ack: Awaitable[object] | None = await self.publishers[message.topic].publish(
                message.value,
                key=message.key.encode(),
                headers=dict(message.headers),
                correlation_id=message.headers.get("ce_correlationid"),
                no_confirm=True,
            )
        if ack is None:  # FastStream's test broker delivers at once and hands no future back
            done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return ack


class Publisher:
    """When this service publishes its outbox (`OUTBOX` of `store`), through the shared `Relay`
    (one per database: its lock keeps two flushes from publishing a message twice)."""

    def __init__(
        self,
        store: Store,
        send: Send,
        clock: Clock,
        connected: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store = store
        self.send = send
        self.clock = clock
        self._connected = connected
        self._relay: Relay | None = None
        self._soon: set[asyncio.Task[None]] = set()
        #: Set when a publication of this process left messages behind (`run_forever`).
        self._left = asyncio.Event()

    @property
    def relay(self) -> Relay:
        """The relay of the store's database (a new one once the store opened a new one)."""
        if self._relay is None or self._relay.database is not self.store.database:
            self._relay = Relay(self.store.database, OUTBOX, self.send, self.clock)
        return self._relay

    async def flush(self, subjects: Sequence[str] | None = None) -> int:
        """Publish what is pending (of `subjects`, or all), in order; raise if Kafka does not
        acknowledge it all (a consumer's record is then read again)."""
        try:
            return await self.relay.flush(subjects)
        except BaseException:
            self._left.set()  # what did not go out: `run_forever` looks once it is due
            raise

    async def flush_quietly(self, subjects: Sequence[str] | None = None) -> None:
        """After a request: publish now if Kafka answers; else the periodic task will (a
        request during an outage does not wait for a timeout)."""
        if subjects is not None and not subjects:
            return
        if not self._connected():
            self._left.set()
            return
        try:
            await self.flush(subjects)
        except (KafkaError, TimeoutError, OSError, SQLAlchemyError) as error:
            log.warning("outbox_pending", error=type(error).__name__)

    def flush_soon(self, subjects: Sequence[str]) -> None:
        """Publish in the background, after the reply: a registration's answer then takes as
        long whether it wrote an e-mail to send or not (a repeat within `RESEND_AFTER` writes
        none), so its timing does not tell whether an address was registered."""
        if not subjects:
            return
        task = asyncio.create_task(self.flush_quietly(subjects))
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

    async def run_forever(self, interval_s: float, idle_s: float = IDLE_CHECK_S) -> None:
        """Publish what has waited at least `interval_s` (what a request's own publication
        could not send, or an instance stopped before sending), when it is due: the round after
        sleeps until the oldest message left reaches that age, or until a publication of this
        process leaves one behind, at most `idle_s`. While Kafka or the store is away, every
        `interval_s`."""
        older_than = timedelta(seconds=interval_s)
        while True:
            self._left.clear()
            wait_s = interval_s
            if self._connected():
                try:
                    await self.relay.flush(older_than=older_than)
                    wait_s = await self._until_due(older_than, idle_s)
                except (KafkaError, TimeoutError, OSError, SQLAlchemyError) as error:
                    log.warning("outbox_pending", error=type(error).__name__)
            with suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._left.wait()

    async def _until_due(self, older_than: timedelta, idle_s: float) -> float:
        due = await self.relay.stale_at(older_than)
        if due is None:
            return idle_s
        return min(idle_s, max(0.0, (due - self.clock()).total_seconds()))


class UseCases(Generic[R]):
    """Runs use cases of `R`, a view of the store, each in its transaction (`_apply`), then
    publishes their messages when the caller needs them: before the reply (`_publish_now`,
    quietly: during a Kafka outage they wait in the outbox and the reply does not), or after
    it (`_publish_soon`). What `conferences.Conferences` and `community.Community` share."""

    def __init__(self, store: Store, publisher: Publisher, clock: Clock) -> None:
        self.store = store
        self.publisher = publisher
        self.clock = clock

    async def _apply(self, use_case: UseCase[R, T]) -> Outcome[T]:
        raise NotImplementedError

    async def _publish_now(self, use_case: UseCase[R, T]) -> T:
        outcome = await self._apply(use_case)
        await self.publisher.flush_quietly(outcome.subjects)
        return outcome.value

    async def _publish_soon(self, use_case: UseCase[R, T]) -> T:
        outcome = await self._apply(use_case)
        self.publisher.flush_soon(outcome.subjects)
        return outcome.value
