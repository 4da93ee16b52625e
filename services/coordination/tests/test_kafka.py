"""The console plugged into the real, secured broker, as the `coordination` principal: what the
router and the notifier publish reaches the queue and the inbox, an answer given in the inbox
reaches the router's topic, and the ACLs keep the console to its own topics."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError
from pydantic import BaseModel
from sqlalchemy import select

from rebond_contracts.answers import answer_event_id, outcome_event_id
from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import (
    Answer,
    CaseAssignedV1,
    CaseFactKind,
    CaseFactV1,
    DeclineReason,
    DirectoryAppliedV1,
    DirectoryOverrideV1,
    ErasureRequestedV1,
    OutcomeKind,
    PeerMatchStatus,
    PeerMatchV1,
    ReferralOutcomeV1,
    ReferralResponseV1,
    ReferralV1,
    UnroutedReferralV1,
    new_reference,
)
from rebond_contracts.questionnaire import Contact, Stage
from rebond_contracts.topics import (
    APPLIED,
    ASSIGNMENTS,
    ERASURES,
    OVERRIDES,
    PEER_MATCHES,
    STATISTICS,
    UNROUTED,
    Topic,
    referrals,
    responses,
)
from rebond_coordination.app import build
from rebond_coordination.domain import CaseStatus, Role
from rebond_coordination.fakes import FakeEvents, FakeMailer, FakeOutbound, FakePreview
from rebond_coordination.store import UserRow
from rebond_coordination.tables import cases, erasures, stat_facts
from rebond_coordination.web import PARIS

from .conftest import Browser, Clock, Console, settings_for

pytestmark = pytest.mark.kafka

SIXTY = AssociationId.SOIXANTE_MILLE_REBONDS


@asynccontextmanager
async def plugged(database_url: str, kafka_secure: Any) -> AsyncIterator[Console]:
    """The console as `python -m rebond_coordination` builds it (Kafka for the outbound port and
    the projections), connected as `coordination`, with its own consumer group. Its `outbound`
    fake is not wired: answers go to Kafka."""
    clock = Clock(datetime.now(UTC))
    mailer, preview, events = FakeMailer(), FakePreview(), FakeEvents()
    settings = settings_for(
        database_url, kafka_bootstrap_servers=kafka_secure.bootstrap,
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="coordination",
        kafka_sasl_password=kafka_secure.credentials["coordination"],
        group_id=f"rebond-coordination.test-{uuid.uuid4().hex[:8]}", relay_interval_s=0.2,
    )  # fmt: skip
    app = build(settings, mailer=mailer, preview=preview, events=events, clock=clock)
    async with Console(app, clock, FakeOutbound(), mailer, preview, events).served() as console:
        yield console


async def publish(
    kafka_secure: Any, principal: str, topic: Topic, data: BaseModel, *, key: str | None = None,
    partition: int | None = None,
) -> None:  # fmt: skip
    """Publish `data` on `topic` as its writer `principal` does, acknowledged by every replica
    (keyed by its reference unless `key` is given; on `partition` when given)."""
    subject = key or getattr(data, "reference")  # noqa: B009
    event = topic.envelope(data, subject=subject, correlationid="test")
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_secure.bootstrap, acks="all", **kafka_secure.sasl(principal)
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            topic.name, event.kafka_value(), key=event.subject.encode(), partition=partition,
            headers=[(name, text.encode()) for name, text in event.kafka_headers().items()],
        )  # fmt: skip
    finally:
        await producer.stop()


async def read_back(
    kafka_secure: Any, topic: Topic, wanted: Callable[[Envelope[Any]], bool]
) -> tuple[bytes | None, Envelope[Any]]:
    """The first event on `topic` that `wanted` picks, read as the router reads it (principal
    `router`, a group of its own, from the start), with its record's key."""
    consumer = AIOKafkaConsumer(
        topic.name, bootstrap_servers=kafka_secure.bootstrap,
        group_id=f"rebond-router.test-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
        **kafka_secure.sasl("router"),
    )  # fmt: skip
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    event = topic.read(record.value, record.headers)
                    if wanted(event):
                        return record.key, event
    finally:
        await consumer.stop()
    raise AssertionError(f"the event never reached {topic.name}")


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0) -> None:
    """Poll `check` until it holds (the consumer joins its group, then reads from the start)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not seen in time"
        await asyncio.sleep(0.3)


def a_referral(at: datetime, association: AssociationId = SIXTY) -> ReferralV1:
    return ReferralV1.model_validate({
        "referral_id": str(uuid.uuid4()), "reference": new_reference(),
        "association_id": association.value, "stage": "after_liquidation", "region": "75",
        "department": "33", "needs": ["mentoring"],
        "contact": {"first_name": "Élodie", "email": "elodie@example.org",
                    "preferred_channel": "email"},
        "message": "Je veux rebondir.", "referred_at": at.isoformat(),
        "respond_by": (at + timedelta(days=10)).isoformat(),
    })  # fmt: skip


def an_unrouted_case(at: datetime) -> UnroutedReferralV1:
    return UnroutedReferralV1.model_validate({
        "reference": new_reference(), "urgent": True, "stage": "after_liquidation", "region": "75",
        "needs": ["mentoring"], "cause": "no_candidate", "rule_set_version": "test",
        "at": at.isoformat(),
    })  # fmt: skip


async def a_queued_case(
    console: Console, kafka_secure: Any
) -> tuple[UserRow, Browser, UnroutedReferralV1]:
    """A signed-in coordinator, and a case the router put on referrals.unrouted, once it shows
    in their queue."""
    row = await console.user("cora@rebond.test", name="Cora")
    cora = await console.sign_in("cora@rebond.test")
    case = an_unrouted_case(console.clock())
    await publish(kafka_secure, "router", UNROUTED, case)

    async def queued() -> bool:
        return case.reference in (await cora.get("/file")).text

    await eventually(queued)
    return row, cora, case


async def test_a_referral_reaches_its_associations_inbox_and_no_other(
    sqlite_url: str, kafka_secure: Any
) -> None:
    """A referral on referrals.60000-rebonds shows in a 60 000 rebonds member's inbox, and a
    Second Souffle member gets 404 for it."""
    async with plugged(sqlite_url, kafka_secure) as console:
        await console.user("marc@60000.test", Role.MEMBER, association=SIXTY.value)
        await console.user("sam@souffle.test", Role.MEMBER, association="second-souffle")
        marc = await console.sign_in("marc@60000.test")
        sam = await console.sign_in("sam@souffle.test")
        referral = a_referral(console.clock())
        await publish(kafka_secure, "notifier", referrals(SIXTY), referral)

        async def in_marcs_inbox() -> bool:
            return referral.reference in (await marc.get("/boite")).text

        await eventually(in_marcs_inbox)
        assert "Élodie" in (await marc.get(f"/boite/{referral.referral_id}")).text
        assert referral.reference not in (await sam.get("/boite")).text
        assert (await sam.get(f"/boite/{referral.referral_id}")).status_code == 404


async def test_an_answer_and_an_outcome_in_the_inbox_arrive_on_the_associations_responses(
    sqlite_url: str, kafka_secure: Any
) -> None:
    """A member's accept, with who will call and when, is published on responses.60000-rebonds
    as a ReferralResponseV1 with the event id the e-mail links give; the outcome recorded next
    follows as a ReferralOutcomeV1 with its id derived from the referral and the outcome."""
    async with plugged(sqlite_url, kafka_secure) as console:
        await console.user("marc@60000.test", Role.MEMBER, association=SIXTY.value)
        marc = await console.sign_in("marc@60000.test")
        referral = a_referral(console.clock())
        await publish(kafka_secure, "notifier", referrals(SIXTY), referral)

        async def arrived() -> bool:
            return (await marc.get(f"/boite/{referral.referral_id}")).status_code == 200

        await eventually(arrived)
        call_by = (
            (console.clock() + timedelta(days=2)).astimezone(PARIS).replace(second=0, microsecond=0)
        )
        answered = await marc.post(
            f"/boite/{referral.referral_id}/reponse",
            {"answer": "accept", "caller": "Amandine",
             "call_by": call_by.replace(tzinfo=None).isoformat(timespec="minutes")},
        )  # fmt: skip
        assert answered.status_code == 303
        page = (await marc.get(f"/boite/{referral.referral_id}")).text
        assert "Amandine" in page

        wanted = answer_event_id(referral.referral_id, "accept")
        key, event = await read_back(kafka_secure, responses(SIXTY), lambda e: e.id == wanted)
        assert event.source == "/rebond/association" and key == referral.reference.encode()
        found = event.data
        assert isinstance(found, ReferralResponseV1)
        assert found.referral_id == referral.referral_id and found.answer is Answer.ACCEPT
        assert (found.caller, found.call_by) == ("Amandine", call_by)

        today = console.clock().astimezone(PARIS).date().isoformat()
        recorded = await marc.post(
            f"/boite/{referral.referral_id}/suite", {"outcome": "contacted", "contacted_on": today}
        )
        assert recorded.status_code == 303
        wanted = outcome_event_id(referral.referral_id, "contacted")
        key, event = await read_back(kafka_secure, responses(SIXTY), lambda e: e.id == wanted)
        assert event.type == "fr.rebond.referral.outcome" and key == referral.reference.encode()
        outcome = event.data
        assert isinstance(outcome, ReferralOutcomeV1)
        assert (outcome.referral_id, outcome.outcome, outcome.on.isoformat()) == (
            referral.referral_id, OutcomeKind.CONTACTED, today,
        )  # fmt: skip


async def test_an_assignment_reaches_the_routers_topic_under_a_staff_id(
    sqlite_url: str, kafka_secure: Any
) -> None:
    """A coordinator assigns a queued case: a CaseAssignedV1 keyed by the reference is read back
    from coordination.assignments, naming the coordinator by account id, never name or e-mail."""
    async with plugged(sqlite_url, kafka_secure) as console:
        cora_row, cora, case = await a_queued_case(console, kafka_secure)
        await cora.post(f"/file/{case.reference}/prendre")
        assigned = await cora.post(
            f"/file/{case.reference}/attribuer",
            {"association": "second-souffle", "note": "Rappelée jeudi.\r\nPréfère le matin."},
        )
        assert assigned.status_code == 303

        key, event = await read_back(
            kafka_secure, ASSIGNMENTS, lambda e: e.subject == case.reference
        )
        assert key == case.reference.encode() and event.type == "fr.rebond.case.assigned"
        data = event.data
        assert isinstance(data, CaseAssignedV1)
        assert data.association_id is AssociationId.SECOND_SOUFFLE
        assert data.note == "Rappelée jeudi.\nPréfère le matin."
        assert data.assigned_by == cora_row.id
        assert "Cora" not in event.kafka_value().decode() and "cora@" not in data.assigned_by


async def test_an_override_waits_until_the_router_says_it_applied_it(
    sqlite_url: str, kafka_secure: Any
) -> None:
    """A pause set in the console is read back from directory.overrides keyed by association;
    the page says "en attente" until a DirectoryAppliedV1 of that override arrives, then shows
    the router's effective values."""
    association = AssociationId.RE_CREER
    try:
        await _override_test(association, sqlite_url, kafka_secure)
    finally:
        # Every router reads directory.overrides from its beginning: leave the file's values in
        # force for the routers of later tests on this broker (an override with no value).
        await publish(
            kafka_secure, "coordination", OVERRIDES,
            DirectoryOverrideV1(
                override_id=uuid.uuid4(), association_id=association, set_by="staff-test",
                set_at=datetime.now(UTC),
            ),
            key=association.value,
        )  # fmt: skip


async def _override_test(association: AssociationId, sqlite_url: str, kafka_secure: Any) -> None:
    async with plugged(sqlite_url, kafka_secure) as console:
        cora_row = await console.user("cora@rebond.test", name="Cora")
        cora = await console.sign_in("cora@rebond.test")
        done = await cora.post(f"/annuaire/{association.value}", {"paused": "pause"})
        assert done.status_code == 303
        key, event = await read_back(
            kafka_secure, OVERRIDES, lambda e: bool(e.data.set_by == cora_row.id)
        )
        override = event.data
        assert isinstance(override, DirectoryOverrideV1) and key == association.value.encode()
        assert (override.association_id, override.paused, override.weekly_capacity) == (
            association, True, None,
        )  # fmt: skip
        page = (await cora.get("/annuaire")).text
        assert "1 en attente" in page and "<strong>En attente</strong>" in page

        applied = DirectoryAppliedV1(
            override_id=override.override_id, association_id=association, paused=True,
            weekly_capacity=20, response_deadline_days=5.0, rule_set_version="2026.12-1",
            applied_at=console.clock(),
        )  # fmt: skip
        await publish(kafka_secure, "router", APPLIED, applied, key=association.value)

        async def in_force() -> bool:
            values, overrides = await console.store.directory()
            return association.value in values and overrides[0].applied_at is not None

        await eventually(in_force)
        page = (await cora.get("/annuaire")).text
        assert "1 en attente" not in page and "<strong>En attente</strong>" not in page
        values, _ = await console.store.directory()
        current = values[association.value]
        assert (current.paused, current.weekly_capacity, current.rule_set_version) == (
            True, 20, "2026.12-1",
        )  # fmt: skip


async def test_an_unrouted_case_waits_in_the_queue_until_the_person_erases_it(
    sqlite_url: str, kafka_secure: Any
) -> None:
    """A case on referrals.unrouted appears in the coordinator's queue; the person's erasure on
    privacy.erasures then withdraws it, with nothing of them left."""
    async with plugged(sqlite_url, kafka_secure) as console:
        _, _, case = await a_queued_case(console, kafka_secure)
        erasure = ErasureRequestedV1(reference=case.reference, requested_at=console.clock())
        await publish(kafka_secure, "intake", ERASURES, erasure)

        async def withdrawn() -> bool:
            row = await console.store.database.run(
                lambda c: c.execute(
                    select(cases.c.status, cases.c.needs, cases.c.stage).where(
                        cases.c.reference == case.reference
                    )
                ).one()
            )
            return tuple(row) == (CaseStatus.WITHDRAWN.value, None, None)

        await eventually(withdrawn)


async def test_the_routers_anonymous_facts_feed_the_statistics_once_each(
    sqlite_url: str, kafka_secure: Any
) -> None:
    """Facts on `statistics.facts`, as the router writes them, reach the statistics: a fact
    read twice counts once (its id), and what is kept names no person. A last fact, after the
    repeated one, is the end marker; only these facts are counted (the session's broker holds
    other tests' facts on the same topic)."""
    day = datetime(2026, 11, 26, tzinfo=UTC)
    facts = [
        CaseFactV1(
            fact_id=uuid.uuid4(),
            kind=kind,
            region="75",
            stage=Stage.AFTER_LIQUIDATION,
            association_id=SIXTY,
            reason=reason,
            seconds_to_answer=seconds,
            day=day,
        )
        for kind, reason, seconds in [
            (CaseFactKind.OFFERED, None, None),
            (CaseFactKind.DECLINED, DeclineReason.OTHER, 60.0),
            (CaseFactKind.ACCEPTED, None, 120.0),
        ]
    ]
    mine = {str(fact.fact_id) for fact in facts}
    async with plugged(sqlite_url, kafka_secure) as console:
        for fact in [facts[0], facts[1], facts[0], facts[2]]:
            await publish(kafka_secure, "router", STATISTICS, fact, key=SIXTY.value)

        async def marker_counted() -> bool:
            found = await console.store.database.run(
                lambda c: c.execute(select(stat_facts.c.fact_id)).scalars().all()
            )
            return str(facts[-1].fact_id) in found

        await eventually(marker_counted)
        rows = await console.store.database.run(
            lambda c: c.execute(
                select(stat_facts.c.fact_id, stat_facts.c.kind, stat_facts.c.seconds_to_answer)
            ).all()
        )
    assert sorted((kind, seconds) for fact_id, kind, seconds in rows if fact_id in mine) == [
        ("accepted", 120.0),
        ("declined", 60.0),
        ("offered", None),
    ]


async def test_events_peer_matches_are_counted_only_with_the_persons_consent(
    sqlite_url: str, kafka_secure: Any
) -> None:
    """On `peers.matches`, as events writes it: a consenting person's `proposed` step is one
    anonymous fact (read twice, counted once); a non-consenting person's, and a `declined`
    step, are not counted. The last, consenting, match is the end marker."""
    at = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)

    def step(status: PeerMatchStatus, consented: bool) -> PeerMatchV1:
        return PeerMatchV1(
            match_id=uuid.uuid4(), reference=new_reference(), status=status,
            region="75", at=at, statistics_consent=consented,
        )  # fmt: skip

    counted = step(PeerMatchStatus.PROPOSED, True)
    steps = [
        counted, counted, step(PeerMatchStatus.PROPOSED, False),
        step(PeerMatchStatus.DECLINED, True), step(PeerMatchStatus.PROPOSED, True),
    ]  # fmt: skip
    async with plugged(sqlite_url, kafka_secure) as console:
        for data in steps:
            await publish(kafka_secure, "events", PEER_MATCHES, data, partition=0)

        async def marker_counted() -> bool:
            found = await console.store.database.run(
                lambda c: c.execute(select(stat_facts.c.fact_id)).scalars().all()
            )
            return f"peer-match:{steps[-1].match_id}" in found

        await eventually(marker_counted)
        rows = await console.store.database.run(
            lambda c: c.execute(
                select(stat_facts.c.fact_id, stat_facts.c.kind, stat_facts.c.region,
                       stat_facts.c.at, stat_facts.c.association_id)
            ).all()
        )  # fmt: skip
    midnight = datetime(2026, 11, 26, tzinfo=UTC)
    mine = {f"peer-match:{s.match_id}" for s in steps}  # the broker may hold others' facts
    assert sorted(tuple(row) for row in rows if row[0] in mine) == sorted(
        (f"peer-match:{s.match_id}", "peer_match", "75", midnight, None)
        for s in (counted, steps[-1])
    )


async def test_an_erasure_read_before_its_case_keeps_the_case_out_of_the_queue(
    sqlite_url: str, kafka_secure: Any
) -> None:
    """The person's erasure is read first, then their case on referrals.unrouted: the case never
    shows. A second case, behind it on the same partition, shows with its shared contact."""
    async with plugged(sqlite_url, kafka_secure) as console:
        await console.user("cora@rebond.test", name="Cora")
        cora = await console.sign_in("cora@rebond.test")
        erased = an_unrouted_case(console.clock())
        erasure = ErasureRequestedV1(reference=erased.reference, requested_at=console.clock())
        await publish(kafka_secure, "intake", ERASURES, erasure)

        async def remembered() -> bool:
            return await console.store.database.run(
                lambda c: (
                    c.execute(
                        select(erasures.c.reference).where(erasures.c.reference == erased.reference)
                    ).first()
                    is not None
                )
            )

        await eventually(remembered)
        shared = an_unrouted_case(console.clock()).model_copy(
            update={
                "contact": Contact(
                    first_name="Claire", phone="0612345678", preferred_channel="phone"
                )
            }
        )
        await publish(kafka_secure, "router", UNROUTED, erased, partition=0)
        await publish(kafka_secure, "router", UNROUTED, shared, partition=0)  # the end marker

        async def marker_read() -> bool:
            return shared.reference in (await cora.get("/file")).text

        await eventually(marker_read)
        assert erased.reference not in (await cora.get("/file")).text
        assert (await cora.get(f"/file/{erased.reference}")).status_code == 404
        assert "0612345678" in (await cora.get(f"/file/{shared.reference}")).text


@pytest.mark.parametrize(
    "topic",
    ["referrals.60000-rebonds", "referrals.unrouted", "routing.decisions", "directory.applied",
     "referrals.followups"],
)  # fmt: skip
async def test_the_console_cannot_write_what_it_does_not_own(kafka_secure: Any, topic: str) -> None:
    """As `coordination`, writing a referral, the human queue, a decision, the router's
    acknowledgement of an override or a follow-up answer is refused."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_secure.bootstrap, acks="all", request_timeout_ms=10_000,
        **kafka_secure.sasl("coordination"),
    )  # fmt: skip
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(topic, b"{}", key=b"RB-TEST")
    finally:
        await producer.stop()


async def test_the_console_cannot_read_the_decisions(kafka_secure: Any) -> None:
    """The decisions carry every person's contact and distress answer: `coordination` may not
    read them (it reads only the referrals of associations and the contact-free queue)."""
    consumer = AIOKafkaConsumer(
        "routing.decisions", bootstrap_servers=kafka_secure.bootstrap,
        group_id=f"rebond-coordination.test-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
        **kafka_secure.sasl("coordination"),
    )  # fmt: skip
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await consumer.start()
            await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()
