"""The router on a real Kafka broker: decisions, answers, deadlines, dead letters, two instances.

Each test runs its own router(s) in this process (a unique consumer group, its own SQLite file,
a controlled clock) that start reading at the end of the input topics, and filters what it reads
by its own references.
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import select

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    Answer,
    CaseAssignedV1,
    DeclineReason,
    DirectoryOverrideV1,
    ErasureRequestedV1,
    FollowUpAnsweredV1,
    OutcomeKind,
    PeerContactV1,
    PeerRequestV1,
    ReferralOutcomeV1,
    ReferralResponseV1,
    new_reference,
)
from rebond_contracts.questionnaire import Stage
from rebond_contracts.topics import (
    APPLIED,
    ASSIGNMENTS,
    DECISIONS,
    ERASURES,
    FOLLOW_UPS,
    OUTCOMES,
    OVERRIDES,
    PEER_REQUESTS,
    QUESTIONNAIRES,
    REFERRAL_STATUS,
    UNROUTED,
    Service,
    dead_letters,
    responses,
)
from rebond_kafka.testing import move_group_to_end, partitions_of
from rebond_router.app import Components, build
from rebond_router.privacy import erased
from rebond_router.settings import RouterSettings
from rebond_router.store import migrate, referrals

from .conftest import APESA, NOW, SIXTY, SOUFFLE, Clock, submitted

pytestmark = pytest.mark.kafka

OUTPUTS = [
    DECISIONS.name, OUTCOMES.name, REFERRAL_STATUS.name, UNROUTED.name, APPLIED.name,
    PEER_REQUESTS.name, dead_letters(Service.ROUTER).name,
]  # fmt: skip
INPUTS = [
    QUESTIONNAIRES.name, ERASURES.name, FOLLOW_UPS.name, ASSIGNMENTS.name,
    *(responses(a).name for a in AssociationId),
]  # fmt: skip


class Probe:
    """Reads the router's output topics from their current end; keeps records of our references."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.records: list[Any] = []

    async def start(self) -> None:
        await self.consumer.start()
        partitions = await partitions_of(self.bootstrap, OUTPUTS)
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the positions now, before the test publishes
            await self.consumer.position(tp)

    async def until(self, check: Callable[[list[Any]], bool], timeout_s: float = 30.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while not check(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out; seen: {[(r.topic, r.value[:120]) for r in self.records]}"
                )
            batches = await self.consumer.getmany(timeout_ms=200)
            for records in batches.values():
                self.records.extend(records)
        return self.records

    def data(self, topic: str, reference: str) -> list[dict[str, Any]]:
        return [
            json.loads(r.value)
            for r in self.records
            if r.topic == topic and r.key == reference.encode()
        ]


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def probe(kafka_bootstrap: str) -> AsyncIterator[Probe]:
    probe = Probe(kafka_bootstrap)
    await probe.start()
    yield probe
    await probe.consumer.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def group() -> str:
    return f"router-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def router_factory(
    kafka_bootstrap: str, tmp_path: Path, clock: Clock, group: str
) -> AsyncIterator[Callable[[], Any]]:
    """Start router instances sharing one group and one store; all stopped at the end."""
    started: list[Components] = []
    await move_group_to_end(kafka_bootstrap, group, INPUTS)  # skip older tests' data

    async def start() -> Components:
        settings = RouterSettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            group_id=group,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/router.sqlite3",
            environment="test",
            retry_backoff_s=0.05,
            retry_attempts=3,
        )
        parts = build(settings, clock=clock)
        migrate(settings.database_url)
        await parts.store.start()
        await parts.broker.start()
        started.append(parts)
        return parts

    yield start
    for parts in started:
        await parts.broker.stop()
        await parts.store.close()


async def send(producer: AIOKafkaProducer, topic: str, event: Any) -> Any:
    headers = [(k, v.encode()) for k, v in event.kafka_headers().items()]
    return await producer.send_and_wait(
        topic, event.kafka_value(), key=event.subject.encode(), headers=headers
    )


async def send_questionnaire(
    producer: AIOKafkaProducer, reference: str, event_id: str | None = None, **changes: Any
) -> Any:
    event = QUESTIONNAIRES.envelope(
        submitted(reference, **changes), subject=reference, correlationid=reference, id=event_id
    )
    return await send(producer, QUESTIONNAIRES.name, event)


async def send_answer(
    producer: AIOKafkaProducer,
    association: AssociationId,
    reference: str,
    referral_id: str,
    decline: DeclineReason | None = None,
) -> Any:
    payload = ReferralResponseV1(
        referral_id=uuid.UUID(referral_id),
        reference=reference,
        answer=Answer.DECLINE if decline else Answer.ACCEPT,
        reason=decline,
        answered_at=NOW,
    )
    topic = responses(association)
    return await send(
        producer, topic.name, topic.envelope(payload, subject=reference, correlationid=reference)
    )


async def wait_committed(bootstrap: str, group: str, record: Any, timeout_s: float = 30.0) -> None:
    """Until `group` has committed past `record`: everything before it is fully handled."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(record.topic, record.partition)
        deadline = time.monotonic() + timeout_s
        while True:
            offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
            if tp in offsets and offsets[tp].offset > record.offset:
                return
            assert time.monotonic() < deadline, f"{group} did not commit past {record.offset}"
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


def statuses(probe: Probe, reference: str) -> list[tuple[str, str]]:
    return [(d["status"], d["association_id"]) for d in probe.data(REFERRAL_STATUS.name, reference)]


async def assert_statuses(probe: Probe, reference: str, expected: list[tuple[str, str]]) -> None:
    """Once as many statuses as `expected` are published for `reference`, they are exactly
    those, in that order (one more, or one missing after the probe's wait, fails)."""
    await probe.until(lambda _: len(statuses(probe, reference)) >= len(expected))
    assert statuses(probe, reference) == expected


async def decided(producer: AIOKafkaProducer, probe: Probe) -> tuple[str, dict[str, Any]]:
    """A new person's questionnaire, sent and decided: their reference and the decision."""
    ref = new_reference()
    await send_questionnaire(producer, ref)
    await probe.until(lambda _: len(probe.data(DECISIONS.name, ref)) == 1)
    return ref, probe.data(DECISIONS.name, ref)[0]


async def test_a_decline_sends_the_referral_to_the_next_alternate(
    router_factory: Any, producer: AIOKafkaProducer, probe: Probe
) -> None:
    """Questionnaire -> decision to 60 000 rebonds; its decline -> a new decision to Second Souffle."""
    await router_factory()
    ref, first = await decided(producer, probe)
    assert first["referral"]["association_id"] == SIXTY
    await send_answer(
        producer, SIXTY, ref, first["referral"]["referral_id"], DeclineReason.NO_CAPACITY
    )
    await probe.until(lambda _: len(probe.data(DECISIONS.name, ref)) == 2)
    second = probe.data(DECISIONS.name, ref)[1]
    assert second["attempt"] == 2 and second["referral"]["association_id"] == SOUFFLE
    await assert_statuses(
        probe,
        ref,
        [("offered", SIXTY), ("declined", SIXTY), ("reoriented", SIXTY), ("offered", SOUFFLE)],
    )


async def test_silence_expires_the_referral_then_the_human_queue_takes_it(
    router_factory: Any, producer: AIOKafkaProducer, probe: Probe, clock: Clock
) -> None:
    """No answer by each deadline: next alternate, then, with none left, `referrals.unrouted`."""
    parts = await router_factory()
    ref, _ = await decided(producer, probe)
    clock.advance(days=10)
    await parts.router.check_deadlines()
    await probe.until(lambda _: len(probe.data(DECISIONS.name, ref)) == 2)
    assert probe.data(DECISIONS.name, ref)[1]["primary"] == SOUFFLE
    clock.advance(days=10)
    await parts.router.check_deadlines()
    await probe.until(lambda _: len(probe.data(UNROUTED.name, ref)) == 1)
    [queued] = probe.data(UNROUTED.name, ref)
    assert [t["outcome"] for t in queued["tried"]] == ["expired", "expired"]
    await assert_statuses(probe, ref, [
        ("offered", SIXTY), ("expired", SIXTY), ("reoriented", SIXTY),
        ("offered", SOUFFLE), ("expired", SOUFFLE), ("unrouted", SOUFFLE),
    ])  # fmt: skip


async def test_an_answer_for_a_referral_not_held_is_dead_lettered_and_changes_nothing(
    router_factory: Any, producer: AIOKafkaProducer, probe: Probe
) -> None:
    """Second Souffle answering 60 000 rebonds' referral is refused; the holder's answer counts."""
    await router_factory()
    ref, decision = await decided(producer, probe)
    referral_id = decision["referral"]["referral_id"]
    await send_answer(producer, SOUFFLE, ref, referral_id)
    await send_answer(producer, SIXTY, ref, referral_id)
    dead = dead_letters(Service.ROUTER).name
    await probe.until(
        lambda _: probe.data(dead, ref) and ("accepted", SIXTY) in statuses(probe, ref)
    )
    [letter] = probe.data(dead, ref)
    assert letter["topic"] == "responses.second-souffle"
    assert "second-souffle does not hold" in letter["error"]
    assert letter["headers"]["ce_type"] == "fr.rebond.referral.answered"
    assert statuses(probe, ref) == [("offered", SIXTY), ("accepted", SIXTY)]


async def test_a_redelivered_questionnaire_gives_one_decision_and_one_referral(
    router_factory: Any, producer: AIOKafkaProducer, probe: Probe, kafka_bootstrap: str, group: str
) -> None:
    """The same event twice (and again after a restart): one decision id, one referral offered."""
    parts = await router_factory()
    ref = new_reference()
    event_id = str(uuid.uuid4())
    await send_questionnaire(producer, ref, event_id)
    await send_questionnaire(producer, ref, event_id)
    await parts.broker.stop()  # a restart: the store survives it
    await router_factory()
    last = await send_questionnaire(producer, ref, event_id)
    await wait_committed(kafka_bootstrap, group, last)
    await assert_statuses(probe, ref, [("offered", SIXTY)])
    assert len(probe.data(DECISIONS.name, ref)) == 1


async def test_a_poison_record_is_dead_lettered_and_the_partition_keeps_flowing(
    router_factory: Any, producer: AIOKafkaProducer, probe: Probe
) -> None:
    """A record that is not JSON goes to deadletter.router with its headers and where it was
    (its value stays on questionnaires.completed, a topic with personal data); the next is
    decided."""
    await router_factory()
    ref = new_reference()
    good = QUESTIONNAIRES.envelope(submitted(ref), subject=ref, correlationid=ref)
    headers = [(k, v.encode()) for k, v in good.kafka_headers().items()]
    await producer.send_and_wait(
        QUESTIONNAIRES.name, b"not json", key=ref.encode(), headers=headers
    )
    await send(producer, QUESTIONNAIRES.name, good)
    dead = dead_letters(Service.ROUTER).name
    await probe.until(lambda _: probe.data(dead, ref) and probe.data(DECISIONS.name, ref))
    [letter] = probe.data(dead, ref)
    assert letter["value"] is None and "Invalid JSON" in letter["error"]
    assert letter["topic"] == QUESTIONNAIRES.name and letter["offset"] >= 0
    assert letter["headers"]["ce_id"] == good.id
    assert len(probe.data(DECISIONS.name, ref)) == 1


async def test_two_instances_in_one_group_decide_every_questionnaire_exactly_once(
    router_factory: Any, producer: AIOKafkaProducer, probe: Probe, kafka_bootstrap: str, group: str
) -> None:
    """Two routers sharing a group and a store: each questionnaire gets exactly one decision."""
    await router_factory()
    await router_factory()
    await wait_members(kafka_bootstrap, group, 2)
    refs = [new_reference() for _ in range(12)]
    sent = [await send_questionnaire(producer, ref) for ref in refs]
    for record in sent:
        await wait_committed(kafka_bootstrap, group, record)
    await probe.until(lambda _: all(probe.data(DECISIONS.name, ref) for ref in refs))
    for ref in refs:
        assert len(probe.data(DECISIONS.name, ref)) == 1, ref
        assert len(statuses(probe, ref)) == 1, ref


async def wait_members(bootstrap: str, group: str, count: int, timeout_s: float = 30.0) -> None:
    """Until the consumer group is stable with `count` members (both instances own partitions)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            [description] = await admin.describe_consumer_groups([group])
            groups = description.groups if hasattr(description, "groups") else description
            state = groups[0]
            members = state[5] if isinstance(state, tuple) else state.members
            phase = state[2] if isinstance(state, tuple) else state.state
            if phase == "Stable" and len(members) >= count:
                return
            assert time.monotonic() < deadline, f"group {group}: {phase}, {len(members)} members"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def test_a_questionnaire_read_after_its_erasure_is_not_routed(
    router_factory: Any, producer: AIOKafkaProducer, probe: Probe, kafka_bootstrap: str, group: str
) -> None:
    """The erasure is read first (`privacy.erasures` ahead of `questionnaires.completed`, as
    after a lag or a replay): the questionnaire that follows is not routed, and the router
    keeps nothing of it; another person's, sent after it, is."""
    parts = await router_factory()
    erased_ref, other = new_reference(), new_reference()
    request = ErasureRequestedV1(reference=erased_ref, requested_at=NOW)
    erasure = await send(
        producer, ERASURES.name,
        ERASURES.envelope(request, subject=erased_ref, correlationid=erased_ref),
    )  # fmt: skip
    await wait_committed(kafka_bootstrap, group, erasure)
    late = await send_questionnaire(producer, erased_ref)
    await send_questionnaire(producer, other)
    await wait_committed(kafka_bootstrap, group, late)
    await probe.until(lambda _: probe.data(DECISIONS.name, other))
    assert probe.data(DECISIONS.name, erased_ref) == []
    assert await erased(parts.store, erased_ref)
    rows = await parts.store.database.run(
        lambda c: c.execute(
            select(referrals.c.reference).where(referrals.c.reference == erased_ref)
        ).all()
    )
    assert rows == []


async def send_override(producer: AIOKafkaProducer, **values: Any) -> DirectoryOverrideV1:
    """An override of 60 000 rebonds on `directory.overrides` (keyed by association)."""
    override = DirectoryOverrideV1(
        override_id=uuid.uuid4(), association_id=SIXTY, set_by="staff-test", set_at=NOW, **values
    )
    envelope = OVERRIDES.envelope(override, subject=SIXTY.value, correlationid=SIXTY.value)
    await send(producer, OVERRIDES.name, envelope)
    return override


def applied(probe: Probe, override: DirectoryOverrideV1) -> list[dict[str, Any]]:
    return [
        d
        for d in probe.data(APPLIED.name, SIXTY.value)
        if d["override_id"] == str(override.override_id)
    ]


async def test_a_pause_published_live_is_applied_said_and_skips_the_association(
    router_factory: Any, producer: AIOKafkaProducer, probe: Probe
) -> None:
    """An override pausing 60 000 rebonds: the router says it is in force on `directory.applied`,
    and the next decision goes to Second Souffle; its withdrawal gives the file's values back.
    (The topic is read from its beginning by every router: the test ends with the withdrawal so
    that later routers rebuild the file's values.)"""
    await send_override(producer)  # whatever an interrupted run left: the file's values
    await router_factory()
    try:
        pause = await send_override(producer, paused=True)
        await probe.until(lambda _: applied(probe, pause))
        [said] = applied(probe, pause)
        assert (said["paused"], said["weekly_capacity"]) == (True, 12)
        ref = new_reference()
        await send_questionnaire(producer, ref)
        await probe.until(lambda _: probe.data(DECISIONS.name, ref))
        [decision] = probe.data(DECISIONS.name, ref)
        assert decision["primary"] == SOUFFLE and SIXTY not in decision["alternates"]
    finally:
        resume = await send_override(producer)
    await probe.until(lambda _: applied(probe, resume))
    again = new_reference()
    await send_questionnaire(producer, again)
    await probe.until(lambda _: probe.data(DECISIONS.name, again))
    assert probe.data(DECISIONS.name, again)[0]["primary"] == SIXTY


async def test_an_assigned_queued_case_gets_a_manual_decision_and_an_offer(
    router_factory: Any, producer: AIOKafkaProducer, probe: Probe
) -> None:
    """Both candidates decline: the queue gets the case with the shared contact; a coordinator's
    assignment to Re-créer gives a `manual` decision with the note and an `offered` status."""
    await router_factory()
    ref = new_reference()
    await send_questionnaire(producer, ref)
    for attempt, holder in enumerate((SIXTY, SOUFFLE), start=1):
        await probe.until(lambda _, n=attempt: len(probe.data(DECISIONS.name, ref)) == n)
        referral = probe.data(DECISIONS.name, ref)[-1]["referral"]
        await send_answer(producer, holder, ref, referral["referral_id"], DeclineReason.OTHER)
    await probe.until(lambda _: probe.data(UNROUTED.name, ref))
    assert probe.data(UNROUTED.name, ref)[0]["contact"]["first_name"] == "Claire"
    assignment = CaseAssignedV1(
        assignment_id=uuid.uuid4(), reference=ref, association_id=AssociationId.RE_CREER,
        note="Joignable le matin.", assigned_by="staff-test", assigned_at=NOW,
    )  # fmt: skip
    await send(
        producer, ASSIGNMENTS.name, ASSIGNMENTS.envelope(assignment, subject=ref, correlationid=ref)
    )
    await probe.until(lambda _: len(probe.data(DECISIONS.name, ref)) == 3)
    manual = probe.data(DECISIONS.name, ref)[-1]
    assert (manual["rule"], manual["note"]) == ("manual", "Joignable le matin.")
    assert manual["referral"]["association_id"] == AssociationId.RE_CREER
    await probe.until(lambda _: statuses(probe, ref)[-1] == ("offered", AssociationId.RE_CREER))


async def test_distress_with_consent_offers_apesa_and_the_main_association_in_parallel(
    router_factory: Any, producer: AIOKafkaProducer, probe: Probe
) -> None:
    """One questionnaire (distress "yes", art. 9 consent) -> two decisions and two offers, each
    on its track, both urgent; `routing.outcomes` (for intake) tells the main track only, with
    one alternative and the deadline."""
    await router_factory()
    ref = new_reference()
    await send_questionnaire(producer, ref, distress="yes", consents__sensitive_data=True)
    # Each topic's records come in their own fetches: wait for all three, not the first two.
    await probe.until(
        lambda _: (
            len(statuses(probe, ref)) == 2
            and len(probe.data(OUTCOMES.name, ref)) == 1
            and len(probe.data(DECISIONS.name, ref)) >= 2
        )
    )
    decisions = probe.data(DECISIONS.name, ref)
    assert sorted((d["track"], d["primary"], d["urgent"]) for d in decisions) == [
        ("distress", APESA, True), ("main", SIXTY, True),
    ]  # fmt: skip
    tracks = {(d["track"], d["status"], d["association_id"])
              for d in probe.data(REFERRAL_STATUS.name, ref)}  # fmt: skip
    assert tracks == {("main", "offered", SIXTY), ("distress", "offered", APESA)}
    [outcome] = probe.data(OUTCOMES.name, ref)
    assert outcome["primary"] == SIXTY and outcome["alternates"] == [SOUFFLE]
    main = next(d for d in decisions if d["track"] == "main")
    assert outcome["respond_by"] == main["referral"]["respond_by"]


async def test_a_questionnaire_asking_for_peer_support_puts_a_request_on_peers_requests(
    router_factory: Any, producer: AIOKafkaProducer, probe: Probe
) -> None:
    """Peer support asked, with consent to share a contact -> one `PeerRequestV1` on
    `peers.requests`, keyed by the reference, beside the decision (same outbox flush)."""
    await router_factory()
    ref = new_reference()
    await send_questionnaire(producer, ref, needs=["peer_support", "mentoring"])
    await probe.until(lambda _: len(probe.data(PEER_REQUESTS.name, ref)) == 1)
    [request] = probe.data(PEER_REQUESTS.name, ref)
    assert PeerRequestV1.model_validate(request) == PeerRequestV1(
        reference=ref, region="75", stage=Stage.AFTER_LIQUIDATION, sector="G",
        contact=PeerContactV1(first_name="Claire", email="claire@example.org"),
        requested_at=NOW, statistics_consent=True,
    )  # fmt: skip


async def test_a_follow_up_due_then_answered_no_puts_the_case_in_the_human_queue(
    router_factory: Any,
    producer: AIOKafkaProducer,
    probe: Probe,
    clock: Clock,
    kafka_bootstrap: str,
    group: str,
) -> None:
    """Accepted, then an outcome that did not reach the person (read from `responses.<id>`):
    30 days on, `follow_up_due` once; the person's "no" on `referrals.followups` ->
    `referrals.unrouted` with cause `follow_up_not_contacted`."""
    parts = await router_factory()
    ref, decision = await decided(producer, probe)
    referral_id = decision["referral"]["referral_id"]
    await send_answer(producer, SIXTY, ref, referral_id)
    topic = responses(SIXTY)
    report = ReferralOutcomeV1(
        referral_id=uuid.UUID(referral_id), reference=ref, outcome=OutcomeKind.UNREACHABLE,
        on=NOW.date(), recorded_at=NOW,
    )  # fmt: skip
    reported = await send(
        producer, topic.name, topic.envelope(report, subject=ref, correlationid=ref)
    )
    await wait_committed(kafka_bootstrap, group, reported)
    clock.advance(days=30)
    assert await parts.router.check_deadlines() == 1
    assert await parts.router.check_deadlines() == 0
    await probe.until(lambda _: ("follow_up_due", SIXTY) in statuses(probe, ref))
    answer = FollowUpAnsweredV1(
        reference=ref, referral_id=uuid.UUID(referral_id), association_id=SIXTY,
        contacted=False, answered_at=NOW,
    )  # fmt: skip
    await send(
        producer, FOLLOW_UPS.name, FOLLOW_UPS.envelope(answer, subject=ref, correlationid=ref)
    )
    await probe.until(lambda _: len(probe.data(UNROUTED.name, ref)) == 1)
    [queued] = probe.data(UNROUTED.name, ref)
    assert queued["cause"] == "follow_up_not_contacted"
    assert statuses(probe, ref) == [
        ("offered", SIXTY), ("accepted", SIXTY), ("follow_up_due", SIXTY), ("unrouted", SIXTY),
    ]  # fmt: skip
    assert probe.data(dead_letters(Service.ROUTER).name, ref) == []
