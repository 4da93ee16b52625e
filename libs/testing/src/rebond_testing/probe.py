"""Reading what services wrote to Kafka, and knowing when they are done with what they read.

`TopicProbe` reads some topics without a consumer group (nothing committed, no rebalance to wait
for): from where each partition ends when it is entered, so a test sees only what is written
from then on (other tests share the broker), or from the beginning.

"Nothing more arrives" is never a sleep here. `TopicProbe.to_end()` reads up to the ends the
topics have at the call (`rebond_kafka.testing.read_to_ends`): a record missing then was not
written before the call. And `processed()` says a service is done with some records: its group
committed past them; the services commit only after their outputs are acknowledged (at least
once), so every output of those records is written by then. Together: wait for `processed`, then
`to_end()`, and what is not there will not come from those inputs.
"""

import asyncio
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from rebond_kafka.testing import partitions_of, read_to_ends
from rebond_testing.waiting import until_async

T = TypeVar("T")
Record = ConsumerRecord[bytes, bytes]


class Written(Protocol):
    """Where a record is: a `ConsumerRecord` read, or the `RecordMetadata` of one sent."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


class TopicProbe:
    """What is written to `topics`, read in the test's own event loop (`async with`).

    `client` holds the connection's security (`kafka_secure.sasl(principal)`), so that a probe
    can read as an association reads, under the ACLs."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        *,
        from_beginning: bool = False,
        **client: Any,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.from_beginning = from_beginning
        self.client = client
        self.records: list[Record] = []
        self._partitions: list[TopicPartition] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Self:
        self._partitions = await partitions_of(self.bootstrap, self.topics, **self.client)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, **self.client
        )
        await consumer.start()
        try:
            consumer.assign(self._partitions)
            if self.from_beginning:
                await consumer.seek_to_beginning(*self._partitions)
            else:
                await consumer.seek_to_end(*self._partitions)
            for partition in self._partitions:  # the start is fixed now, before the test writes
                await consumer.position(partition)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the probe is read inside `async with TopicProbe(...)` only")
        return self._consumer

    async def poll(self, timeout_ms: int = 200) -> list[Record]:
        """One fetch (waiting up to `timeout_ms` for a record); what it brought."""
        batches = await self.consumer.getmany(*self._partitions, timeout_ms=timeout_ms)
        fresh = [record for batch in batches.values() for record in batch]
        self.records += fresh
        return fresh

    async def until(self, check: Callable[[list[Record]], T], within_s: float) -> T:
        """Read until `check(records)` is truthy: that value, or the last one after `within_s`."""

        async def step() -> T:
            await self.poll()
            return check(self.records)

        return await until_async(step, within_s, every_s=0)

    async def to_end(self) -> list[Record]:
        """Everything written to the topics before this call, and whatever else came with it:
        the records read so far, completed up to the topics' present ends."""
        self.records += await read_to_ends(self.consumer, self._partitions)
        return self.records

    def about(self, key: str, where: Callable[[Record], bool] | None = None) -> list[Record]:
        """The records read so far under `key` (a submission reference, say) that pass `where`."""
        return [
            record
            for record in self.records
            if record.key == key.encode() and (where is None or where(record))
        ]

    async def wait_for(
        self,
        key: str,
        count: int = 1,
        within_s: float = 30,
        where: Callable[[Record], bool] | None = None,
    ) -> list[Record]:
        """`about(key, where)` once it holds `count` records, or as it stands after `within_s`."""
        await self.until(lambda _: len(self.about(key, where)) >= count, within_s)
        return self.about(key, where)


def headers(record: Record) -> dict[str, str]:
    """A record's headers as text (`ce_type`, `ce_subject`, …)."""
    return {name: value.decode("utf-8", "replace") for name, value in record.headers}


def read_until(
    bootstrap: str,
    topics: Sequence[str],
    check: Callable[[list[Record]], T],
    within_s: float,
    **client: Any,
) -> T:
    """For a test without an event loop: read `topics` from their beginning until `check`
    holds on what was read (its value), or its last value after `within_s`."""

    async def read() -> T:
        async with TopicProbe(bootstrap, topics, from_beginning=True, **client) as probe:
            return await probe.until(check, within_s)

    return asyncio.run(read())


async def committed(
    bootstrap: str, groups: Iterable[str], **client: Any
) -> dict[TopicPartition, int]:
    """The highest offset committed by any of `groups`, per partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client)
    await admin.start()
    found: dict[TopicPartition, int] = {}
    try:
        for group in groups:
            for partition, meta in (await admin.list_consumer_group_offsets(group)).items():
                found[partition] = max(found.get(partition, -1), meta.offset)
        return found
    finally:
        await admin.close()


async def consumer_groups(bootstrap: str, prefix: str, **client: Any) -> list[str]:
    """The consumer groups the broker knows whose id starts with `prefix`: every group of a
    service run with that group id (its own and its suffixed ones, `<id>.status`, ...), so a
    test need not know which suffixes the service uses."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client)
    await admin.start()
    try:
        return sorted(
            group for group, _protocol in await admin.list_consumer_groups()
            if group.startswith(prefix)
        )  # fmt: skip
    finally:
        await admin.close()


async def processed(
    bootstrap: str, group: str, records: Iterable[Written], within_s: float = 30, **client: Any
) -> bool:
    """True once `group` has committed past every one of `records` (False after `within_s`):
    its service is done with them, and, since it commits only after its outputs are
    acknowledged, everything it wrote for them is on the broker."""
    wanted = [(TopicPartition(r.topic, r.partition), r.offset) for r in records]

    async def past() -> bool:
        try:
            offsets = await committed(bootstrap, [group], **client)
        except KafkaError as error:  # e.g. no coordinator yet on a young broker: ask again
            if not error.retriable:
                raise
            return False
        return all(offsets.get(partition, -1) > offset for partition, offset in wanted)

    return await until_async(past, within_s, every_s=0.2)
