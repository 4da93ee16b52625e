"""move_group_to_end, on the real broker: the group's committed offsets are the topics' ends."""

import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from rebond_kafka.testing import move_group_to_end, partitions_of

pytestmark = pytest.mark.kafka


async def test_the_group_is_committed_at_the_end_of_every_partition(kafka_bootstrap: str) -> None:
    """Two topics (one with records on two partitions, one empty): the group's offsets are each
    partition's end, so its consumers skip everything written before."""
    full, empty = f"lib-kafka-{uuid.uuid4().hex[:8]}", f"lib-kafka-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 2, 1) for t in (full, empty)])
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for partition, count in ((0, 3), (1, 1)):
                for _ in range(count):
                    await producer.send_and_wait(full, b"old", partition=partition)
        finally:
            await producer.stop()
        assert sorted(await partitions_of(kafka_bootstrap, [full])) == [
            TopicPartition(full, 0), TopicPartition(full, 1),
        ]  # fmt: skip
        group = f"lib-kafka-{uuid.uuid4().hex[:8]}"
        await move_group_to_end(kafka_bootstrap, group, [full, empty])
        committed = await admin.list_consumer_group_offsets(group)
        assert {tp: meta.offset for tp, meta in committed.items()} == {
            TopicPartition(full, 0): 3, TopicPartition(full, 1): 1,
            TopicPartition(empty, 0): 0, TopicPartition(empty, 1): 0,
        }  # fmt: skip
    finally:
        await admin.delete_topics([full, empty])
        await admin.close()
