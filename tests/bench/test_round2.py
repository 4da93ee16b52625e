"""Round 2's steps measure what they claim, on the real broker and the bare pipeline.

`make bench` waits for a pipeline to be drained before it reads CPU or starts an idle window:
a drain check that missed a group's backlog would count that work as idle, or leave it out of
the cost per questionnaire. The campaign step must see every accepted questionnaire through and
charge each process its own CPU.
"""

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.arrivals import Arrivals, schedule
from bench.round2 import Load, campaign, consumer_lag, start_bare
from bench.run import BARE_TOPICS, Bench, questionnaires
from rebond_kafka.testing import create_topics

pytestmark = pytest.mark.kafka


async def _commit(bootstrap: str, group: str, tp: TopicPartition, offset: int) -> None:
    # Without auto-commit: on stop, an auto-committing consumer commits its own position, which
    # it may already have read back from the group (2), undoing the commit of 5.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()


def test_consumer_lag_counts_what_a_group_has_not_committed(kafka_bootstrap: str) -> None:
    """A group that committed 2 of 5 records lags by 3; by 0 once it committed all five."""
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"lag-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[int, int]:
        await create_topics(kafka_bootstrap, [topic], 1)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for i in range(5):
                await producer.send_and_wait(topic, b"x", key=str(i).encode())
        finally:
            await producer.stop()
        tp = TopicPartition(topic, 0)
        await _commit(kafka_bootstrap, group, tp, 2)
        behind = await consumer_lag(kafka_bootstrap, [group])
        await _commit(kafka_bootstrap, group, tp, 5)
        return behind, await consumer_lag(kafka_bootstrap, [group])

    assert asyncio.run(scenario()) == (3, 0)


def test_the_campaign_step_sees_every_questionnaire_and_charges_each_process(
    kafka_bootstrap: str, tmp_path: Path, go_toolchain: None
) -> None:
    """Every accepted POST's record is seen at the end; each process has CPU per questionnaire."""
    asyncio.run(create_topics(kafka_bootstrap, BARE_TOPICS, 3))
    bodies = tmp_path / "bodies.json"
    bodies.write_text(json.dumps(questionnaires(20)))
    bench = Bench(kafka_bootstrap, tmp_path, quick=True)
    pipeline = start_bare(bench, broker_pid=None)
    load = Load(Arrivals.POISSON, 20, 2, seed=4)
    try:
        result = campaign(bench, pipeline, load, bodies)
    finally:
        for proc in bench.procs:
            bench.stop(proc)
    sent = len(schedule(load.arrivals, load.rate, load.seconds, load.seed))
    assert result["accepted"] == sent == result["referrals_seen"]
    assert len(result["latencies_ms"]) == sent and min(result["latencies_ms"]) > 0
    per_questionnaire = result["cpu_ms_per_questionnaire"]
    assert set(per_questionnaire) == {"bare-front", "bare-hop-1", "bare-hop-2"}
    assert all(value > 0 for value in per_questionnaire.values())
    assert result["cpu_ms_per_questionnaire_all"] == pytest.approx(sum(per_questionnaire.values()))
    # Each process's share of the latency, every reference seen at every topic on its way.
    assert list(result["stages"]) == ["bare-front", "bare-hop-1", "bare-hop-2"]
    assert all(stage["count"] == sent for stage in result["stages"].values())
    assert all(stage["p50_ms"] >= 0 for stage in result["stages"].values())
