"""create_topics, move_group_to_end and records_to_end, on the real broker: the group's committed offsets are the
topics' ends; the records read are those written before, all of them."""

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownTopicOrPartitionError

from rebond_kafka.testing import (
    create_topics,
    move_group_to_end,
    partitions_of,
    records_to_end,
)

pytestmark = pytest.mark.kafka


@pytest.fixture
async def topics(kafka_bootstrap: str) -> AsyncIterator[tuple[str, str]]:
    """Two new topics of two partitions: one holding a, b, c on partition 0 and d on 1, one
    empty; deleted afterwards."""
    full, empty = f"lib-kafka-{uuid.uuid4().hex[:8]}", f"lib-kafka-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, [full, empty], 2)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for partition, values in ((0, [b"a", b"b", b"c"]), (1, [b"d"])):
                for value in values:
                    await producer.send_and_wait(full, value, partition=partition)
        finally:
            await producer.stop()
        yield full, empty
    finally:
        await admin.delete_topics([full, empty])
        await admin.close()


async def test_the_group_is_committed_at_the_end_of_every_partition(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    """Two topics (one with records on two partitions, one empty): the group's offsets are each
    partition's end, so its consumers skip everything written before."""
    full, empty = topics
    assert sorted(await partitions_of(kafka_bootstrap, [full])) == [
        TopicPartition(full, 0), TopicPartition(full, 1),
    ]  # fmt: skip
    group = f"lib-kafka-{uuid.uuid4().hex[:8]}"
    await move_group_to_end(kafka_bootstrap, group, [full, empty])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    assert {tp: meta.offset for tp, meta in committed.items()} == {
        TopicPartition(full, 0): 3, TopicPartition(full, 1): 1,
        TopicPartition(empty, 0): 0, TopicPartition(empty, 1): 0,
    }  # fmt: skip


async def test_records_to_end_reads_every_partition_as_it_stands(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    """Records on two partitions of one topic and none on another are all read, once each, and
    the call returns at those ends instead of waiting for more."""
    records = await records_to_end(kafka_bootstrap, list(topics))
    assert sorted((r.partition, r.offset, r.value) for r in records) == [
        (0, 0, b"a"), (0, 1, b"b"), (0, 2, b"c"), (1, 0, b"d"),
    ]  # fmt: skip


async def test_a_topic_the_broker_does_not_know_is_an_error_not_an_empty_read(
    kafka_bootstrap: str,
) -> None:
    """partitions_of (and so records_to_end) raises for an unknown topic instead of reading
    nothing from it, which would pass for a topic with no records."""
    with pytest.raises(UnknownTopicOrPartitionError):
        await records_to_end(kafka_bootstrap, [f"lib-kafka-missing-{uuid.uuid4().hex[:8]}"])


async def test_topics_created_again_are_left_as_they_are_beside_new_ones(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    """Created again (with one partition), an existing topic keeps its two; a new topic named
    beside it is created."""
    full, _ = topics
    new = f"lib-kafka-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, [full, new], 1)
    assert len(await partitions_of(kafka_bootstrap, [full])) == 2
    assert await partitions_of(kafka_bootstrap, [new]) == [TopicPartition(new, 0)]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([new])
    finally:
        await admin.close()
