"""Bare aiokafka baselines for the router benchmark, on the same broker in the same run.

B1: consume one record -> `send_and_wait` -> commit, per message.
B2: `getmany` -> `send` every record without awaiting each -> gather -> commit, per batch.
Both forward the value unchanged with acks=all and an idempotent producer, like the router.
`forward_batch` (B2's step) is also each hop of the end-to-end baseline (bare_pipeline.py).
"""

import asyncio
import time

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


async def b1(bootstrap: str, source: str, sink: str, group: str, total: int) -> float:
    """Messages per second, one round trip and one commit per message."""
    consumer, producer = await _clients(bootstrap, source, group)
    done = 0
    try:
        started = time.perf_counter()
        while done < total:
            record = await consumer.getone()
            await producer.send_and_wait(sink, record.value, key=record.key)
            await consumer.commit(
                {TopicPartition(record.topic, record.partition): record.offset + 1}
            )
            done += 1
        return total / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


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
    consumer, producer = await _clients(bootstrap, source, group)
    done = 0
    try:
        started = time.perf_counter()
        while done < total:
            done += await forward_batch(consumer, producer, sink, timeout_ms=500, max_records=2000)
        return done / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()
