"""For tests and the bench: create topics; commit a consumer group at the current end of topics; read topics as
they stand; settings that satisfy production's Kafka check; make a broker go away for the
clients of this process only."""

import asyncio
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any
from unittest.mock import patch

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import CloseReason
from aiokafka.errors import for_code

from rebond_kafka.outage import bootstrap_key
from rebond_kafka.reconnect import RECONNECT


async def create_topics(bootstrap: str, topics: Iterable[str], partitions: int) -> None:
    """Create `topics`, each with `partitions` partitions and one replica (the test broker's
    one node). A topic that exists already is left as it is: the broker answers each topic on
    its own, and its answer is not read (as aiokafka's `create_topics` does not raise). Returns
    once the broker describes them all (or after 10 s): "created" only means the controller
    has a topic, and the broker that answers lists it a moment later."""
    names = list(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in names])
        deadline = asyncio.get_running_loop().time() + 10
        while any(t["error_code"] for t in await admin.describe_topics(names)):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def partitions_of(bootstrap: str, topics: list[str], **client: Any) -> list[TopicPartition]:
    """Every partition of `topics`, as the broker describes them (`client`: the connection's
    security, e.g. a principal's SASL settings). A topic the broker does not describe (unknown,
    or not authorised) raises its error rather than counting as a topic without partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    for topic in described:
        if topic["error_code"]:
            raise for_code(topic["error_code"])(f"cannot describe {topic['topic']}")
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]


async def move_group_to_end(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commit `group`'s offsets at the current end of `topics`: a consumer of that group then
    reads only what is written from now on (not older tests' or runs' records)."""
    partitions = await partitions_of(bootstrap, topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(dict(await consumer.end_offsets(partitions)))
    finally:
        await consumer.stop()


async def records_to_end(
    bootstrap: str, topics: list[str], **client: Any
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topics` as they stand: each partition read from its beginning up to the
    end it had when this was called, without a group (nothing committed, nothing waited for)."""
    partitions = await partitions_of(bootstrap, topics, **client)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **client)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records = await read_to_ends(consumer, partitions, ends)
        return [r for r in records if r.offset < ends[TopicPartition(r.topic, r.partition)]]
    finally:
        await consumer.stop()


async def read_to_ends(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    ends: dict[TopicPartition, int] | None = None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """The records of `partitions` (assigned to `consumer`) from its positions on, until each
    position reaches its end in `ends` (by default the end it has when this is called): so the
    read stops by itself once everything written before is in, instead of waiting for records
    that may never come. Records fetched past those ends are returned too (the consumer's
    position has moved past them: a later read would not see them again)."""
    ends = ends if ends is not None else await consumer.end_offsets(partitions)
    records: list[ConsumerRecord[bytes, bytes]] = []
    while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
        for batch in (await consumer.getmany(*partitions, timeout_ms=1000)).values():
            records += batch
    return records


#: Settings keyword arguments that satisfy production's Kafka check (`kafka_production_problems`),
#: for tests of another production rule; `<PREFIX>_` + the upper-cased name as a variable.
PRODUCTION_KAFKA: dict[str, str] = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "SCRAM-SHA-512",
    "kafka_sasl_username": "service",
    "kafka_sasl_password": "a-password-only-tests-use",
}


class BrokerAway:
    """`client`'s broker gone until `back()`: its metadata names a closed port for every
    broker and its connections are broken, as a broker killed would break them. The broker
    itself stays up for every other client (the other tests' on a shared broker).

    A connection the client was opening when the broker went away (a consumer finding its
    group's coordinator just after start) reaches the real broker afterwards: while away, such
    connections are broken too, every `SWEEP_S`, as a broker killed would have refused them.
    Without it the client kept that one connection, and with it the process never saw Kafka
    gone (4 runs in 17 of intake's readiness test; 0 in 10 with the sweep)."""

    SWEEP_S = 0.05

    def __init__(self, client: AIOKafkaClient) -> None:
        self.client = client
        self.real = dict(client.cluster._brokers)
        self.real_ports = {broker.port for broker in self.real.values()}
        self._sweeping: asyncio.TimerHandle | None = None

    def go(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.client.cluster._brokers = {n: b._replace(port=port) for n, b in self.real.items()}
        for conn in list(self.client._conns.values()):
            conn.close(reason=CloseReason.CONNECTION_BROKEN)
        self._sweep()

    def _sweep(self) -> None:
        """Break the connections to the real broker opened since `go` (see the class)."""
        for conn in list(self.client._conns.values()):
            if conn.port in self.real_ports and conn.connected():
                conn.close(reason=CloseReason.CONNECTION_BROKEN)
        with suppress(RuntimeError):  # no event loop: a synchronous caller, nothing to sweep
            self._sweeping = asyncio.get_running_loop().call_later(self.SWEEP_S, self._sweep)

    def back(self) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
        self.client.cluster._brokers = dict(self.real)


@contextmanager
def kafka_away(bootstrap_servers: str) -> Iterator[None]:
    """Within the block, Kafka is gone for every client of this process that bootstraps from
    `bootstrap_servers` (and was paced by `rebond_kafka.reconnect`, as every client that made a
    connection since `install()` was); after it, it is back.

    A client paced for the first time within the block (one that had bootstrapped but not yet
    asked for a broker when the block began: a consumer just started) finds Kafka gone too, from
    its first request on. Without that, such a client reached the broker and the process never
    saw Kafka gone (intake's readiness test: "reachable again after 0.0 s", a fresh-clone run
    of 2026-12-07 18:48)."""
    away = [BrokerAway(client) for client in RECONNECT.clients(bootstrap_servers)]
    if not away:
        raise RuntimeError(f"no client of {bootstrap_servers} in this process")
    key = bootstrap_key(bootstrap_servers)
    track = RECONNECT._track

    def track_away(client: AIOKafkaClient) -> Any:
        state = track(client)
        if state.key == key:
            late = BrokerAway(client)
            late.go()
            away.append(late)
        return state

    for one in away:
        one.go()
    try:
        with patch.object(RECONNECT, "_track", track_away):
            yield
    finally:
        for one in away:
            one.back()
