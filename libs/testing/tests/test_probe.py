"""The topic probe on the real broker: it reads from the end (only what comes after it started)
or from the beginning, `to_end` returns what was written before the call without waiting for
more, it reads as a principal under the ACLs, and `processed` tells when a group is past some
records."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAuthorizationFailedError

from rebond_testing import TopicProbe, processed


@pytest.fixture
async def topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A new topic of two partitions holding `old` under key a; deleted afterwards."""
    name = f"lib-testing-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1)])
        await _send(kafka_bootstrap, name, [(b"a", b"old")])
        yield name
    finally:
        await admin.delete_topics([name])
        await admin.close()


async def _send(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> list[object]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        return [await producer.send_and_wait(topic, value, key=key) for key, value in records]
    finally:
        await producer.stop()


async def test_from_the_end_only_what_comes_after(kafka_bootstrap: str, topic: str) -> None:
    """Started after `old`: waits for and returns `new` alone, by key."""
    async with TopicProbe(kafka_bootstrap, [topic]) as probe:
        await _send(kafka_bootstrap, topic, [(b"a", b"new"), (b"b", b"other")])
        assert [r.value for r in await probe.wait_for("a", within_s=20)] == [b"new"]
        assert [r.value for r in probe.about("a")] == [b"new"]


async def test_from_the_beginning_to_the_end_without_waiting(
    kafka_bootstrap: str, topic: str
) -> None:
    """From the beginning, `to_end` returns every record written before the call (both
    partitions), at once, and nothing after it."""
    await _send(kafka_bootstrap, topic, [(b"b", b"second")])
    async with TopicProbe(kafka_bootstrap, [topic], from_beginning=True) as probe:
        assert sorted(r.value for r in await probe.to_end()) == [b"old", b"second"]
        assert await probe.wait_for("c", within_s=0.5) == []


async def test_a_probe_reads_as_a_principal(kafka_bootstrap: str, kafka_secure: Any) -> None:
    """As an association, on the secured listener: its own topic reads, to its end (a record
    just written there included); another association's is refused."""
    key = f"probe-{uuid.uuid4().hex[:8]}".encode()
    await _send(kafka_bootstrap, "referrals.apesa", [(key, b"{}")])
    as_apesa = kafka_secure.sasl("association-apesa")
    async with TopicProbe(
        kafka_secure.bootstrap, ["referrals.apesa"], from_beginning=True, **as_apesa
    ) as probe:
        assert [r.value for r in await probe.to_end() if r.key == key] == [b"{}"]
    with pytest.raises(TopicAuthorizationFailedError):
        async with TopicProbe(kafka_secure.bootstrap, ["referrals.re-creer"], **as_apesa):
            pass


async def test_processed_once_the_group_commits_past_the_records(
    kafka_bootstrap: str, topic: str
) -> None:
    """Not processed while the group's commit is behind a record; processed once past it."""
    [sent] = await _send(kafka_bootstrap, topic, [(b"a", b"work")])
    group = f"lib-testing-{uuid.uuid4().hex[:8]}"
    assert not await processed(kafka_bootstrap, group, [sent], within_s=0.5)  # type: ignore[list-item]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, sent.partition)  # type: ignore[attr-defined]
        consumer.assign([partition])
        await consumer.commit({partition: sent.offset + 1})  # type: ignore[attr-defined]
    finally:
        await consumer.stop()
    assert await processed(kafka_bootstrap, group, [sent], within_s=10)  # type: ignore[list-item]
