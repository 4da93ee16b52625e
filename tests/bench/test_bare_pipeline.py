"""The bench's library-only baselines (bench/bare_pipeline.py) make the journey they stand for.

If the front skipped validation, or the hops lost or short-cut records, the bench would compare
Rebond against something that does less than it claims.
"""

import asyncio
import itertools
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE, QuestionnaireV1
from rebond_kafka.testing import create_topics
from rebond_testing import free_port

pytestmark = pytest.mark.kafka

NEEDS = [["listening"], ["mentoring", "coaching"], ["salaried_job"]]
SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bare_pipeline.py"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def _read(bootstrap: str, topic: str, count: int) -> dict[str, bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen: dict[str, bytes] = {}
    try:
        deadline = time.monotonic() + 60
        while len(seen) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    seen[record.key.decode()] = record.value
    finally:
        await consumer.stop()
    return seen


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The front and two hops as `make bench` starts them; yields (front URL, last topic)."""
    topics = [f"bare-{name}-{uuid.uuid4().hex[:8]}" for name in ("in", "middle", "out")]
    asyncio.run(create_topics(kafka_bootstrap, topics, 3))
    port = free_port()
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        log = tmp_path / f"{name}.log"
        command = [sys.executable, str(SCRIPT), *args, "--bootstrap", kafka_bootstrap]
        process = subprocess.Popen(
            command, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=SCRIPT.parent
        )
        started.append((process, log))
        return process

    start("front", "front", "--topic", topics[0], "--port", str(port))
    for i, (source, sink) in enumerate(itertools.pairwise(topics)):
        start(f"hop{i}", "hop", "--source", source, "--sink", sink, "--group", f"g{i}-{port}")
    try:
        deadline = time.monotonic() + 60
        url = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            hops_ready = all("ready" in log.read_text().splitlines() for _, log in started[1:])
            if hops_ready and _answers(url):
                break
            assert all(p.poll() is None for p, _ in started), [
                log.read_text() for _, log in started
            ]
            time.sleep(0.2)
        else:
            pytest.fail("the bare pipeline did not start")
        yield url, topics[-1]
    finally:
        for process, _ in started:
            process.terminate()
            process.wait(20)


def test_each_post_reaches_the_last_topic_under_its_reference_with_its_questionnaire(
    pipeline: tuple[str, str], kafka_bootstrap: str
) -> None:
    url, last = pipeline
    sent: dict[str, QuestionnaireV1] = {}
    with httpx.Client(timeout=10) as client:
        for needs in itertools.islice(itertools.cycle(NEEDS), 30):
            answers = {**EXAMPLE_QUESTIONNAIRE, "needs": needs}
            reply = client.post(url + "/v1/submissions", json=answers)
            assert reply.status_code == 202
            sent[reply.json()["reference"]] = QuestionnaireV1.model_validate(answers)
        # the floor pays for validation as intake does: an invalid questionnaire is refused
        invalid = client.post(url + "/v1/submissions", json={**EXAMPLE_QUESTIONNAIRE, "needs": 1})
        assert invalid.status_code == 422
    assert len(sent) == 30
    arrived = asyncio.run(_read(kafka_bootstrap, last, 30))
    assert {ref: QuestionnaireV1.model_validate_json(v) for ref, v in arrived.items()} == sent
