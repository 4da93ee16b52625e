"""Every service's Kafka subscribers, declared one way: `subscribe(broker, TOPIC, handler, …)`.

What each subscriber used to write by hand is done here once:

- **the contract read**: the subscriber's decoder reads each record with its registry topic
  (`Topic.read`: CloudEvents headers, event type, schema version, payload model), so a handler
  takes a typed `Received[T]` (the record and its `Envelope[T]`), never bytes;
- **dead letters**: a record the contract refuses goes to the service's `deadletter.<service>`
  with the error, and the partition keeps flowing (FastStream's own JSON decoder would raise on a
  record labelled JSON that is not, before any handler runs, and the nack would re-read it
  forever);
- **the record's scope**: its trace and log context (`record_scope`, from the service's
  observability) plus its reference and event id bound in structlog's context variables, around
  a single-record handler, and per record (`Received.scope()`) in a batch handler;
- **at least once**: `AckPolicy.NACK_ON_ERROR`, so the offset is committed only once the handler
  returned; a handler that raises has its record (or batch) read again;
- **the AsyncAPI document**: the handler is registered with its topic's payload model as the
  message schema, and the topic's name and the caller's description;
- **no timer between a record and its batch**: FastStream 0.7's batch subscriber sleeps
  `batch_timeout_ms` after every empty poll, so a record arriving during that sleep waited it
  out (up to 100 ms at each batch hop: the router's and the notifier's p99 at a few submissions a
  second). aiokafka's `getmany` already waits up to the timeout for a first record and returns as
  soon as one is fetched, so the batch subscribers here poll again at once (`_poll_without_sleep`);
- **no wake-up while idle**: since a fetched record is handed over at once whatever the timeout,
  the timeout only says how often an empty poll wakes the service to poll again. It is 5 s
  (`Batch.timeout_ms`), not FastStream's 100 ms: idle, a batch subscriber woke 10 times a second
  for nothing, which was most of a service's idle CPU (issue 23's target 3).

A handler decides what a failure means: raising is "try again" (the record is re-read), and a
handler that knows a record can never succeed dead-letters it itself (`DeadLetters.send`).
"""

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from itertools import chain
from typing import Any, Generic, Literal, TypeVar, overload

import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import BaseModel, SkipValidation

from rebond_contracts.envelope import Envelope, EnvelopeError
from rebond_contracts.topics import Service, Topic, dead_letters
from rebond_kafka.records import send_dead_letter

T = TypeVar("T", bound=BaseModel)
Record = ConsumerRecord[bytes, bytes]
#: Enters a consumed record's trace and log context (a service's observability provides it).
RecordScope = Callable[[Record], AbstractContextManager[object]]
#: How often a subscriber's consumer tells its group it is alive (aiokafka's default is 3 s).
#: A service runs one consumer per subscriber in the same group (the router five), and each
#: member that joins starts a rebalance the others only notice at their next heartbeat: at 3 s,
#: a router's start or restart waited out about five of them (14 s) before it read anything.
#: At 1 s that wait is a third, for one small request a second per consumer.
HEARTBEAT_INTERVAL_MS = 1000
#: How long a batch subscriber's empty poll waits for a first record before it polls again.
#: It adds no latency (a record fetched meanwhile is handed over at once); it only sets how often
#: an idle service wakes up. Measured idle (four services on one broker, 2026-12-07, 30 s
#: windows): with 5 s instead of 100 ms the router's voluntary context switches went from about
#: 50 to 25 a second and its CPU from 1.1 to 0.7 % of a core, the notifier's from 60 to 30 and
#: 1.4 to 0.75 %. Heartbeats at 1 s or 3 s made no difference beyond the windows' noise.
IDLE_POLL_MS = 5_000


def no_scope(_record: Record) -> AbstractContextManager[object]:
    return nullcontext()


@dataclass(frozen=True)
class Received(Generic[T]):
    """One record read by its topic's contract."""

    topic: Topic
    record: Record
    event: Envelope[T]
    record_scope: RecordScope = no_scope

    @property
    def data(self) -> T:
        return self.event.data

    @contextmanager
    def scope(self) -> Iterator[None]:
        """This record's trace and log context, with its reference and event id bound."""
        with (
            self.record_scope(self.record),
            structlog.contextvars.bound_contextvars(
                reference=self.event.subject, event_id=self.event.id
            ),
        ):
            yield


@dataclass(frozen=True)
class Batch:
    """Read records in batches: up to `max_records` per call of the handler, one offset commit
    per batch. A poll hands over what is fetched at once (a batch never waits to fill); with
    nothing fetched it waits up to `timeout_ms` for a first record, then polls again. The broker
    answers a fetch once it holds `fetch_min_bytes` or after `fetch_max_wait_ms` (aiokafka's
    defaults: 1 byte, 500 ms)."""

    max_records: int
    timeout_ms: int = IDLE_POLL_MS
    fetch_min_bytes: int | None = None
    fetch_max_wait_ms: int | None = None


class DeadLetters:
    """A service's `deadletter.<service>` topic, declared on its broker."""

    def __init__(self, broker: KafkaBroker, service: Service) -> None:
        topic = dead_letters(service)
        self.service = service
        self.publisher = broker.publisher(
            topic.name, title=topic.name, description=topic.description, schema=topic.payload
        )

    async def send(self, record: Record, error: str) -> None:
        """Publish `record` with `error` to the dead letters (acknowledged by Kafka)."""
        await send_dead_letter(self.publisher, self.service, record, error)


SingleHandler = Callable[[Received[T]], Awaitable[None]]
BatchHandler = Callable[[Sequence[Received[T]]], Awaitable[None]]
#: A model of some fields of the main payload, for every topic subscribed or by topic.
View = type[BaseModel] | Mapping[Topic, type[BaseModel]]


@overload
def subscribe(
    broker: KafkaBroker,
    topics: Topic | Sequence[Topic],
    handler: SingleHandler[T],
    *,
    dead_letters: DeadLetters,
    group_id: str | None,
    description: str,
    batch: None = None,
    view: View | None = None,
    record_scope: RecordScope = no_scope,
    title: str | None = None,
    auto_offset_reset: Literal["earliest", "latest"] = "earliest",
) -> None: ...


@overload
def subscribe(
    broker: KafkaBroker,
    topics: Topic | Sequence[Topic],
    handler: BatchHandler[T],
    *,
    dead_letters: DeadLetters,
    group_id: str | None,
    description: str,
    batch: Batch,
    view: View | None = None,
    record_scope: RecordScope = no_scope,
    title: str | None = None,
    auto_offset_reset: Literal["earliest", "latest"] = "earliest",
) -> None: ...


def subscribe(
    broker: KafkaBroker,
    topics: Topic | Sequence[Topic],
    handler: Any,
    *,
    dead_letters: DeadLetters,
    group_id: str | None,
    description: str,
    batch: Batch | None = None,
    view: View | None = None,
    record_scope: RecordScope = no_scope,
    title: str | None = None,
    auto_offset_reset: Literal["earliest", "latest"] = "earliest",
) -> None:
    """Declare a subscriber of `topics` (one group, `group_id`) that hands `handler` each record
    (or, with `batch`, each batch) read by its topic's contract. `view` reads only some fields of
    the topics' main payload (`Topic.read`); given by topic, it reads those topics so and the
    others whole (a subscriber of several topics that needs two fields of one of them).

    `group_id=None` reads without a consumer group: every partition, from `auto_offset_reset`
    at each start, nothing committed (a compacted topic whose whole content is state, read again
    by every instance); the offset then advances once the handler is called, as there is no
    commit to hold back."""
    by_name = {topic.name: topic for topic in ([topics] if isinstance(topics, Topic) else topics)}
    payload = next(iter(by_name.values())).payload
    views = view if isinstance(view, Mapping) else dict.fromkeys(by_name.values(), view)

    async def read(record: Record) -> Received[Any] | None:
        topic = by_name[record.topic]
        try:
            event = topic.read(record.value, record.headers, view=views.get(topic))
        except EnvelopeError as error:
            with record_scope(record):
                await dead_letters.send(record, str(error))
            return None
        return Received(topic, record, event, record_scope)

    options: dict[str, Any] = {}
    if batch is not None:
        options = {"batch": True, "max_records": batch.max_records,
                   "batch_timeout_ms": batch.timeout_ms}  # fmt: skip
        if batch.fetch_min_bytes is not None:
            options["fetch_min_bytes"] = batch.fetch_min_bytes
        if batch.fetch_max_wait_ms is not None:
            options["fetch_max_wait_ms"] = batch.fetch_max_wait_ms

        async def decode_batch(msg: KafkaMessage) -> list[Received[Any]]:
            records: tuple[Record, ...] = msg.raw_message  # type: ignore[assignment]
            readable = [await read(record) for record in records]
            return [received for received in readable if received is not None]

        async def on_batch(body: SkipValidation[Any]) -> None:
            if body:
                await handler(body)

        decoder: Any = decode_batch
        call: Any = on_batch
    else:

        async def decode_one(msg: KafkaMessage) -> Received[Any] | None:
            record: Record = msg.raw_message  # type: ignore[assignment]
            return await read(record)

        async def on_one(body: SkipValidation[Any]) -> None:
            if body is not None:
                with body.scope():
                    await handler(body)

        decoder, call = decode_one, on_one
    # The AsyncAPI document describes the channel's messages, one payload each.
    call.__annotations__["body"] = SkipValidation[payload]  # type: ignore[misc,valid-type]
    subscriber = broker.subscriber(
        *by_name,
        group_id=group_id,
        auto_offset_reset=auto_offset_reset,
        ack_policy=AckPolicy.NACK_ON_ERROR if group_id is not None else AckPolicy.ACK_FIRST,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        decoder=decoder,
        title=title or ", ".join(by_name),
        description=description,
        **options,
    )
    if batch is not None:
        subscriber.get_msg = _poll_without_sleep(batch)
    subscriber(call)


def _poll_without_sleep(batch: Batch) -> Callable[[Any], Awaitable[tuple[Record, ...]]]:
    """The batch subscriber's poll: `getmany` waits up to the timeout for a first record and
    returns once records are fetched; an empty poll is simply made again (the consume loop skips
    an empty batch), instead of sleeping the timeout as FastStream's own does."""

    async def get_msg(consumer: Any) -> tuple[Record, ...]:
        fetched = await consumer.getmany(timeout_ms=batch.timeout_ms, max_records=batch.max_records)
        return tuple(chain(*fetched.values()))

    return get_msg
