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
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    PeerMatchStatus,
    PeerMatchV1,
    Reason,
    ReferralStatus,
    ReferralStatusV1,
    RoutingOutcomeV1,
)
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_contracts.topics import (
    OUTCOMES,
    PEER_MATCHES,
    QUESTIONNAIRES,
    REFERRAL_STATUS,
    Service,
    all_topics,
    dead_letters,
)
from rebond_intake.app import build, create_app
from rebond_intake.settings import IntakeSettings
from rebond_intake.store import SqlStatusStore, StoreUnavailable
from rebond_kafka.testing import kafka_away, move_group_to_end
from rebond_testing import TopicProbe, processed, until_async

pytestmark = pytest.mark.kafka


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (Kafka, store, consumer) and a client, until ready."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            ready = await until_async(lambda: answers(client, 200), within_s=30, every_s=0.2)
            assert ready, "intake never connected to Kafka"
            yield client


async def answers(client: httpx.AsyncClient, status: int) -> bool:
    """Whether intake's /readyz answers `status` now."""
    return (await client.get("/readyz")).status_code == status


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
    async with TopicProbe(kafka_bootstrap, [QUESTIONNAIRES.name]) as questionnaires:
        async with running(create_app(settings(kafka_bootstrap, tmp_path))) as client:
            key = {"Idempotency-Key": f"kafka-{uuid.uuid4()}"}
            reply = await client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
            retry = await client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers=key)
        assert reply.status_code == 202, reply.text
        reference = reply.json()["reference"]
        assert retry.json()["reference"] == reference
        # A 202 comes once Kafka acknowledged the record: whatever either post published is
        # before the topic's present end.
        await questionnaires.to_end()
        records = questionnaires.about(reference)
        assert len(records) == 1
        event = QUESTIONNAIRES.read(records[0].value, records[0].headers)
        assert event.data.reference == reference and event.subject == reference
        assert event.data.questionnaire.contact.first_name == "Claire"


async def publish(producer: AIOKafkaProducer, topic, payload, reference: str, event_id: str):
    env = topic.envelope(payload, subject=reference, correlationid=reference, id=event_id)
    await producer.send_and_wait(
        topic.name,
        env.kafka_value(),
        key=reference.encode(),
        headers=[(k, v.encode()) for k, v in env.kafka_headers().items()],
    )


async def test_status_events_build_the_timeline(kafka_bootstrap, tmp_path) -> None:
    """A routing outcome, referral statuses (one duplicated, one out of order) and a peer
    proposed (`peers.matches`) show in GET status; an unreadable record goes to
    deadletter.intake."""
    config = settings(kafka_bootstrap, tmp_path)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        async with (
            TopicProbe(kafka_bootstrap, [dead_letters(Service.INTAKE).name]) as dead,
            running(create_app(config)) as client,
        ):
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
            peer = PeerMatchV1(
                match_id=uuid.uuid4(), reference=reference, status=PeerMatchStatus.PROPOSED,
                region="75", at=now + timedelta(seconds=3),
            )  # fmt: skip
            await publish(producer, PEER_MATCHES, peer, reference, str(uuid.uuid4()))
            unreadable = await producer.send_and_wait(
                OUTCOMES.name, b"not json", key=reference.encode(), headers=[]
            )
            complete = ["received", "oriented", "accepted", "peer_proposed"]

            async def timeline_complete() -> bool:
                body = (await client.get(f"/v1/submissions/{reference}")).json()
                return [step["code"] for step in body["timeline"]] == complete

            await until_async(timeline_complete, within_s=20, every_s=0.3)
            body = (await client.get(f"/v1/submissions/{reference}")).json()
            assert [step["code"] for step in body["timeline"]] == complete
            assert body["status"] == "accepted"
            assert body["timeline"][1]["reasons"] == ["Après une liquidation."]
            assert "Claire" not in str(body)
            english = (await client.get(f"/v1/submissions/{reference}?locale=en")).json()
            assert english["timeline"][2]["text"].startswith("60 000 rebonds accepted")
            # Intake commits a record once what it wrote for it is acknowledged: past the
            # unreadable record, every dead letter it gave is on the topic.
            done = await processed(kafka_bootstrap, config.group_id, [unreadable], within_s=10)
            assert done, "intake never committed past the unreadable record"
            await dead.to_end()
            letters = dead.about(reference)
        assert len(letters) == 1 and b'"value":"not json"' in letters[0].value
    finally:
        await producer.stop()


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

        async def read_back() -> bool:
            return (await client.get(f"/v1/submissions/{reference}")).status_code != 404

        assert await until_async(read_back, within_s=20, every_s=0.2), "never read back"
        status = await client.get(f"/v1/submissions/{reference}")
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
    # Only this test's records come: the group starts at the end of every topic intake reads
    # (from the registry: a topic intake reads later, left out here, would hold the consumer on
    # other tests' records while the store is down).
    read = [topic.name for topic in all_topics() if Service.INTAKE in topic.readers]
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
            # Long enough for the fourth attempt whatever the jitter: the delays are 0.5, 1 and
            # 2 s, each +-20 %, so it comes up to 4.2 s after the first (a 4 s outage once left
            # it out: gaps of 0.56 and 1.12 s, the last under 1.5); the fifth, at least 6.2 s
            # after the first, comes once the store is back.
            down_until = attempts()[0] + 6
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
        ready = await until_async(lambda: answers(client, status), within_s, every_s=0.1)
        assert ready, f"/readyz not {status} within {within_s} s"

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
