"""Bare aiokafka baselines for the router benchmark, on the same broker in the same run.

B1: consume one record -> `send_and_wait` -> commit, per message.
B2: `getmany` -> `send` every record without awaiting each -> gather -> commit, per batch.
Both forward the value unchanged with acks=all and an idempotent producer, like the router.
`forward_batch` (B2's step) is also each hop of the end-to-end baseline (bare_pipeline.py).
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


async def _clients(
    bootstrap: str, source: str, group: str
) -> tuple[AIOKafkaConsumer, AIOKafkaProducer]:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    return consumer, producer


async def _rate(
    bootstrap: str,
    source: str,
    group: str,
    total: int,
    step: Callable[[AIOKafkaConsumer, AIOKafkaProducer], Awaitable[int]],
) -> float:
    """Messages per second forwarded by repeating `step` (which says how many it forwarded)
    until `total` have been."""
    consumer, producer = await _clients(bootstrap, source, group)
    done = 0
    try:
        started = time.perf_counter()
        while done < total:
            done += await step(consumer, producer)
        return done / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


async def b1(bootstrap: str, source: str, sink: str, group: str, total: int) -> float:
    """Messages per second, one round trip and one commit per message."""

    async def forward_one(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> int:
        record = await consumer.getone()
        await producer.send_and_wait(sink, record.value, key=record.key)
        await consumer.commit({TopicPartition(record.topic, record.partition): record.offset + 1})
        return 1

    return await _rate(bootstrap, source, group, total, forward_one)


async def forward_batch(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    sink: str,
    *,
    timeout_ms: int,
    max_records: int,
) -> int:
    """B2's step: forward one `getmany` batch, every send in flight together, then commit it."""
    batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
    records = [r for rs in batches.values() for r in rs]
    if not records:
        return 0
    futures = [await producer.send(sink, r.value, key=r.key) for r in records]
    await asyncio.gather(*futures)
    await consumer.commit()
    return len(records)


async def b2(bootstrap: str, source: str, sink: str, group: str, total: int) -> float:
    """Messages per second, sends of a batch in flight together, one commit per batch."""
    step = partial(forward_batch, sink=sink, timeout_ms=500, max_records=2000)
    return await _rate(bootstrap, source, group, total, step)
