"""For tests and the bench: commit a consumer group at the current end of topics; read topics as
they stand; settings that satisfy production's Kafka check; make a broker go away for the
clients of this process only."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import CloseReason

from rebond_kafka.reconnect import RECONNECT


async def partitions_of(bootstrap: str, topics: list[str]) -> list[TopicPartition]:
    """Every partition of `topics`, as the broker describes them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
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


async def records_to_end(bootstrap: str, topics: list[str]) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topics` as they stand: each partition read from its beginning up to the
    end it had when this was called, without a group (nothing committed, nothing waited for)."""
    partitions = await partitions_of(bootstrap, topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for tp, batch in (await consumer.getmany(timeout_ms=1000)).items():
                records += [record for record in batch if record.offset < ends[tp]]
        return records
    finally:
        await consumer.stop()


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
    itself stays up for every other client (the other tests' on a shared broker)."""

    def __init__(self, client: AIOKafkaClient) -> None:
        self.client = client
        self.real = dict(client.cluster._brokers)

    def go(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.client.cluster._brokers = {n: b._replace(port=port) for n, b in self.real.items()}
        for conn in list(self.client._conns.values()):
            conn.close(reason=CloseReason.CONNECTION_BROKEN)

    def back(self) -> None:
        self.client.cluster._brokers = dict(self.real)


@contextmanager
def kafka_away(bootstrap_servers: str) -> Iterator[None]:
    """Within the block, Kafka is gone for every client of this process that bootstraps from
    `bootstrap_servers` (and was paced by `rebond_kafka.reconnect`, as every client that made a
    connection since `install()` was); after it, it is back."""
    away = [BrokerAway(client) for client in RECONNECT.clients(bootstrap_servers)]
    if not away:
        raise RuntimeError(f"no client of {bootstrap_servers} in this process")
    for one in away:
        one.go()
    try:
        yield
    finally:
        for one in away:
            one.back()
