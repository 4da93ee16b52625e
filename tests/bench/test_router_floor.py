"""The router's floor (bench/router_floor.py) does the router's work, and no less.

If `least_work` skipped part of what the router does per record, or `alone` decided nothing
(every record already known, say), the bench would set the router beside a floor it does not
stand on.
"""

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from bench import router_floor
from rebond_contracts.payloads import QuestionnaireCompletedV1
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE, QuestionnaireV1
from rebond_contracts.topics import DECISIONS, OUTCOMES, QUESTIONNAIRES, REFERRAL_STATUS
from rebond_kafka.testing import create_topics
from rebond_router.directory import DEFAULT_PATH, load_directory

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "router_floor.py"
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
STAGES = ["pre_procedure", "receivership", "after_liquidation"]
NEEDS = [["listening"], ["mentoring", "coaching"], ["salaried_job"], ["new_business"]]


def _records(count: int) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    records = []
    for i in range(count):
        answers = {
            **EXAMPLE_QUESTIONNAIRE,
            "situation": {**EXAMPLE_QUESTIONNAIRE["situation"], "stage": STAGES[i % 3]},
            "needs": NEEDS[i % 4],
        }
        reference = f"RB-0000-0000-0000-{i:04d}"
        event = QUESTIONNAIRES.envelope(
            QuestionnaireCompletedV1(
                reference=reference,
                received_at=NOW,
                questionnaire=QuestionnaireV1.model_validate(answers),
            ),
            subject=reference,
            correlationid=reference,
        )
        records.append(
            (event.kafka_value(), [(k, v.encode()) for k, v in event.kafka_headers().items()])
        )
    return records


def test_least_work_writes_what_the_router_writes_for_a_record(tmp_path: Path) -> None:
    floor = router_floor
    directory = load_directory(DEFAULT_PATH)
    for i, record in enumerate(_records(12)):
        # a store of its own each: the router's weekly loads start empty, as least_work's do
        sink = floor.Acknowledged()
        database = f"sqlite:///{tmp_path / f'router{i}.db'}"
        asyncio.run(floor.alone([record], database, sink, lambda: NOW))
        least = floor.least_work(record, directory, NOW)
        assert [topic for topic, _, _ in least][:2] == [DECISIONS.name, OUTCOMES.name]
        assert REFERRAL_STATUS.name in [topic for topic, _, _ in least]
        assert sorted(least) == sorted(sink.sent)


def test_alone_decides_every_record_through_the_store(tmp_path: Path) -> None:
    floor = router_floor
    sink = floor.Acknowledged()
    count = 1200  # more than one of the router's batches
    rate = asyncio.run(
        floor.alone(_records(count), f"sqlite:///{tmp_path / 'r.db'}", sink, lambda: NOW)
    )
    assert rate > 0
    decided = {key for topic, key, _ in sink.sent if topic == DECISIONS.name}
    offered = [key for topic, key, _ in sink.sent if topic == REFERRAL_STATUS.name]
    assert len(decided) == count
    assert sorted(offered) == sorted(decided)


async def _publish(bootstrap: str, topic: str, records: list[tuple[bytes, list]]) -> None:
    await create_topics(bootstrap, [topic], 3)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i, (value, headers) in enumerate(records):
            await producer.send(topic, value, key=str(i).encode(), headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.kafka
def test_the_script_times_the_first_records_of_the_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"floor-{uuid.uuid4().hex[:8]}"
    asyncio.run(_publish(kafka_bootstrap, topic, _records(150)))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--bootstrap", kafka_bootstrap, "--topic", topic,
         "--count", "100", "--database", f"sqlite:///{tmp_path / 'floor.db'}"],
        cwd=SCRIPT.parent, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    rates = json.loads(done.stdout.splitlines()[-1])
    assert rates["records"] == 100
    floor = router_floor  # a topic holding fewer records than asked for: all of them, no wait

    async def all_of_it() -> list:
        async with asyncio.timeout(30):
            return await floor.first_records(kafka_bootstrap, topic, 1000)

    assert len(asyncio.run(all_of_it())) == 150
    assert rates["alone_per_s"] > 0
    assert rates["least_per_s"] > 0
