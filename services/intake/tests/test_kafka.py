"""The whole intake on the real broker: submissions out, status events in."""

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    Reason,
    ReferralStatus,
    ReferralStatusV1,
    RoutingOutcomeV1,
)
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_contracts.topics import (
    DELIVERIES,
    OUTCOMES,
    QUESTIONNAIRES,
    REFERRAL_STATUS,
    Service,
    dead_letters,
)
from rebond_intake.app import build, create_app
from rebond_intake.settings import IntakeSettings
from rebond_intake.store import SqlStatusStore, StoreUnavailable
from rebond_kafka.testing import kafka_away, move_group_to_end

pytestmark = pytest.mark.kafka


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (Kafka, store, consumer) and a client, until ready."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            deadline = time.monotonic() + 30
            while (await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "intake never connected to Kafka"
                await asyncio.sleep(0.2)
            yield client


async def consumer_at_end(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="latest", enable_auto_commit=False
    )
    await consumer.start()
    deadline = time.monotonic() + 15
    while not consumer.assignment() and time.monotonic() < deadline:
        await consumer.getmany(timeout_ms=100)
    for partition in consumer.assignment():
        await consumer.position(partition)
    return consumer


async def records_with_key(consumer: AIOKafkaConsumer, key: bytes, within_s: float) -> list:
    """Records with `key` seen within `within_s`; after the first, one more second for extras."""
    found: list = []
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=200)
        fresh = [r for rs in batches.values() for r in rs if r.key == key]
        if fresh and not found:
            deadline = min(deadline, time.monotonic() + 1)
        found += fresh
    return found


def settings(bootstrap: str, tmp_path) -> IntakeSettings:
    return IntakeSettings(
        kafka_bootstrap_servers=bootstrap,
        data_dir=tmp_path,
        group_id=f"intake-test-{uuid.uuid4().hex[:8]}",
        rate_limit_per_minute=0,
    )


async def test_submission_reaches_questionnaires_completed_once(kafka_bootstrap, tmp_path):
    """POST -> one CloudEvent on questionnaires.completed keyed by the reference; a keyed retry
    adds nothing."""
    consumer = await consumer_at_end(kafka_bootstrap, QUESTIONNAIRES.name)
    try:
        async with running(create_app(settings(kafka_bootstrap, tmp_path))) as client:
            key = {"Idempotency-Key": f"kafka-{uuid.uuid4()}"}
            reply = await client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
            retry = await client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
        assert reply.status_code == 202, reply.text
        reference = reply.json()["reference"]
        assert retry.json()["reference"] == reference
        records = await records_with_key(consumer, reference.encode(), within_s=5)
        assert len(records) == 1
        event = QUESTIONNAIRES.read(records[0].value, records[0].headers)
        assert event.data.reference == reference and event.subject == reference
        assert event.data.questionnaire.contact.first_name == "Claire"
    finally:
        await consumer.stop()


async def publish(producer: AIOKafkaProducer, topic, payload, reference: str, event_id: str):
    env = topic.envelope(payload, subject=reference, correlationid=reference, id=event_id)
    await producer.send_and_wait(
        topic.name,
        env.kafka_value(),
        key=reference.encode(),
        headers=[(k, v.encode()) for k, v in env.kafka_headers().items()],
    )


async def test_status_events_build_the_timeline(kafka_bootstrap, tmp_path) -> None:
    """A routing outcome and referral statuses (one duplicated, one out of order) show in GET status;
    an unreadable record goes to deadletter.intake."""
    dead = await consumer_at_end(kafka_bootstrap, dead_letters(Service.INTAKE).name)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        async with running(create_app(settings(kafka_bootstrap, tmp_path))) as client:
            reply = await client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
            reference = reply.json()["reference"]
            now = datetime.now(UTC)
            decision = RoutingOutcomeV1(
                decision_id=uuid.uuid4(), reference=reference,
                primary=AssociationId.SOIXANTE_MILLE_REBONDS,
                reasons=[Reason(code="stage", fr="Après une liquidation.", en="After a liquidation.")],
                decided_at=now,
            )  # fmt: skip
            accepted = ReferralStatusV1(
                reference=reference, association_id=AssociationId.SOIXANTE_MILLE_REBONDS,
                status=ReferralStatus.ACCEPTED, at=now + timedelta(seconds=2),
            )  # fmt: skip
            accepted_id = str(uuid.uuid4())
            await publish(producer, REFERRAL_STATUS, accepted, reference, accepted_id)
            await publish(producer, REFERRAL_STATUS, accepted, reference, accepted_id)
            await publish(producer, OUTCOMES, decision, reference, str(decision.decision_id))
            await producer.send_and_wait(
                OUTCOMES.name, b"not json", key=reference.encode(), headers=[]
            )
            deadline = time.monotonic() + 20
            codes: list[str] = []
            while time.monotonic() < deadline:
                body = (await client.get(f"/v1/submissions/{reference}")).json()
                codes = [step["code"] for step in body["timeline"]]
                if codes == ["received", "oriented", "accepted"]:
                    break
                await asyncio.sleep(0.3)
            assert codes == ["received", "oriented", "accepted"]
            assert body["status"] == "accepted"
            assert body["timeline"][1]["reasons"] == ["Après une liquidation."]
            assert "Claire" not in str(body)
            english = (await client.get(f"/v1/submissions/{reference}?locale=en")).json()
            assert english["timeline"][2]["text"].startswith("60 000 rebonds accepted")
        letters = await records_with_key(dead, reference.encode(), within_s=10)
        assert len(letters) == 1 and b'"value":"not json"' in letters[0].value
    finally:
        await producer.stop()
        await dead.stop()


async def test_unknown_reference_is_404(kafka_bootstrap, tmp_path) -> None:
    """A reference nobody submitted gets 404."""
    async with running(create_app(settings(kafka_bootstrap, tmp_path))) as client:
        assert (await client.get("/v1/submissions/RB-0000-0000-0000-0000")).status_code == 404
        assert (await client.get("/v1/submissions/not-a-reference")).status_code == 404


async def test_received_comes_from_the_event_read_back_from_kafka(kafka_bootstrap, tmp_path):
    """A restarted intake (nothing in memory) shows "received" at the submission's time once
    its consumer has read the event back from questionnaires.completed, once only."""
    config = settings(kafka_bootstrap, tmp_path)
    async with running(create_app(config)) as client:
        reply = await client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
    assert reply.status_code == 202, reply.text
    reference = reply.json()["reference"]
    async with running(create_app(config)) as client:
        deadline = time.monotonic() + 20
        while (status := await client.get(f"/v1/submissions/{reference}")).status_code == 404:
            assert time.monotonic() < deadline, "the submission was never read back"
            await asyncio.sleep(0.2)
        assert status.status_code == 200, status.text
        assert [step["code"] for step in status.json()["timeline"]] == ["received"]
        erase = await client.post(
            f"/v1/submissions/{reference}/erasure",
            json={"secret": reply.json()["erasure_secret"]},
        )
        assert erase.status_code == 202, erase.text


async def test_a_store_outage_makes_the_consumer_back_off(kafka_bootstrap, tmp_path):
    """While the store refuses writes, the consumer tries again at growing intervals (not at
    the pace of nacks and re-reads), and stores the record once the store is back: nothing
    lost, nothing dead-lettered."""
    config = settings(kafka_bootstrap, tmp_path)
    # Only this test's records come: the group starts at the end of the topics intake reads.
    read = [QUESTIONNAIRES.name, OUTCOMES.name, REFERRAL_STATUS.name, DELIVERIES.name]
    await move_group_to_end(kafka_bootstrap, config.group_id, read)
    store = SqlStatusStore(config.store_url)
    await store.migrate()
    await store.start()
    calls: list[tuple[float, set[str]]] = []  # when, and for which references
    down_until = time.monotonic() + 3600
    add_many = store.add_many

    async def flaky_add_many(records):
        calls.append((time.monotonic(), {r.reference for r in records}))
        if time.monotonic() < down_until:
            raise StoreUnavailable("OperationalError")
        return await add_many(records)

    store.add_many = flaky_add_many  # type: ignore[method-assign]
    try:
        async with running(build(config, store=store).web) as client:
            reply = await client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
            reference = reply.json()["reference"]
            deadline = time.monotonic() + 30

            def attempts() -> list[float]:  # those for this submission (the topic has others)
                return [at for at, references in calls if reference in references]

            while not attempts():  # the consumer met the outage
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            down_until = attempts()[0] + 4
            while not await store.records(reference):
                assert time.monotonic() < deadline, "the record was never stored"
                await asyncio.sleep(0.1)
        during = [t for t in attempts() if t < down_until]
        gaps = [b - a for a, b in itertools.pairwise(during)]
        assert len(during) <= 5 and gaps and gaps[-1] >= 1.5, gaps
    finally:
        await store.close()


async def test_readiness_and_submissions_follow_kafka_away_and_back(kafka_bootstrap, tmp_path):
    """Kafka gone for intake's clients: /readyz 503 (it said 200 before, the producer having
    connected once), submissions refused with 503 at once rather than after the publish
    timeout, /metrics says so at once; Kafka back: ready again within a few seconds, 202."""
    bootstrap = "localhost:" + kafka_bootstrap.rsplit(":", 1)[1]  # this test's own link

    async def until_ready(status: int, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while (await client.get("/readyz")).status_code != status:
            assert time.monotonic() < deadline, f"/readyz not {status} within {within_s} s"
            await asyncio.sleep(0.1)

    async with running(create_app(settings(bootstrap, tmp_path))) as client:
        with kafka_away(bootstrap):
            await until_ready(503, within_s=10)  # its clients notice on their next use
            started = time.monotonic()
            refused = await client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
            metrics = await client.get("/metrics")
            answered_in = time.monotonic() - started
        await until_ready(200, within_s=10)
        accepted = await client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
        after = (await client.get("/metrics")).text
    assert refused.status_code == 503 and "retry-after" in refused.headers
    assert answered_in < 1.0, f"refusal and scrape took {answered_in:.1f} s"
    assert "rebond_kafka_reachable 0.0" in metrics.text
    assert accepted.status_code == 202, accepted.text
    assert "rebond_kafka_reachable 1.0" in after
    outages = float(after.split("\nrebond_kafka_outages_total ")[1].split()[0])
    assert outages >= 1
