"""For tests and the bench: commit a consumer group at the current end of topics; settings that
satisfy production's Kafka check."""

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


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


#: Settings keyword arguments that satisfy production's Kafka check (`ServiceSettings`), for
#: tests of another production rule; `<PREFIX>_` + the upper-cased name as a variable.
PRODUCTION_KAFKA: dict[str, str] = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "SCRAM-SHA-512",
    "kafka_sasl_username": "service",
    "kafka_sasl_password": "a-password-only-tests-use",
}
