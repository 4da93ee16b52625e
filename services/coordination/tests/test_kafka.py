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

from rebond_contracts.answers import answer_event_id
from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    Answer,
    ErasureRequestedV1,
    ReferralResponseV1,
    ReferralV1,
    UnroutedReferralV1,
)
from rebond_contracts.topics import ERASURES, UNROUTED, Topic, referrals, responses
from rebond_coordination.app import build
from rebond_coordination.domain import CaseStatus, Role
from rebond_coordination.fakes import FakeEvents, FakeMailer, FakeOutbound, FakePreview
from rebond_coordination.tables import cases

from .conftest import Clock, Console, reference, settings_for

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
    console = Console(app, clock, FakeOutbound(), mailer, preview, events)
    async with app.web.router.lifespan_context(app.web):
        try:
            yield console
        finally:
            for client in console.clients:
                await client.aclose()


async def publish(kafka_secure: Any, principal: str, topic: Topic, data: BaseModel) -> None:
    """Publish `data` on `topic` as its writer `principal` does, acknowledged by every replica."""
    event = topic.envelope(data, subject=getattr(data, "reference"), correlationid="test")  # noqa: B009
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_secure.bootstrap, acks="all", **kafka_secure.sasl(principal)
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            topic.name, event.kafka_value(), key=event.subject.encode(),
            headers=[(name, text.encode()) for name, text in event.kafka_headers().items()],
        )  # fmt: skip
    finally:
        await producer.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0) -> None:
    """Poll `check` until it holds (the consumer joins its group, then reads from the start)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not seen in time"
        await asyncio.sleep(0.3)


def a_referral(at: datetime, association: AssociationId = SIXTY) -> ReferralV1:
    return ReferralV1.model_validate({
        "referral_id": str(uuid.uuid4()), "reference": reference(),
        "association_id": association.value, "stage": "after_liquidation", "region": "75",
        "department": "33", "needs": ["mentoring"],
        "contact": {"first_name": "Élodie", "email": "elodie@example.org",
                    "preferred_channel": "email"},
        "message": "Je veux rebondir.", "referred_at": at.isoformat(),
        "respond_by": (at + timedelta(days=10)).isoformat(),
    })  # fmt: skip


def an_unrouted_case(at: datetime) -> UnroutedReferralV1:
    return UnroutedReferralV1.model_validate({
        "reference": reference(), "urgent": True, "stage": "after_liquidation", "region": "75",
        "needs": ["mentoring"], "cause": "no_candidate", "rule_set_version": "test",
        "at": at.isoformat(),
    })  # fmt: skip


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


async def test_an_answer_in_the_inbox_arrives_on_the_associations_responses(
    sqlite_url: str, kafka_secure: Any
) -> None:
    """A member's accept is published on responses.60000-rebonds as a valid ReferralResponseV1,
    with the event id the e-mail links give, which the router reads as itself."""
    async with plugged(sqlite_url, kafka_secure) as console:
        await console.user("marc@60000.test", Role.MEMBER, association=SIXTY.value)
        marc = await console.sign_in("marc@60000.test")
        referral = a_referral(console.clock())
        await publish(kafka_secure, "notifier", referrals(SIXTY), referral)

        async def arrived() -> bool:
            return (await marc.get(f"/boite/{referral.referral_id}")).status_code == 200

        await eventually(arrived)
        answered = await marc.post(f"/boite/{referral.referral_id}/reponse", {"answer": "accept"})
        assert answered.status_code == 303

        wanted = answer_event_id(referral.referral_id, "accept")
        consumer = AIOKafkaConsumer(
            responses(SIXTY).name, bootstrap_servers=kafka_secure.bootstrap,
            group_id=f"rebond-router.test-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
            **kafka_secure.sasl("router"),
        )  # fmt: skip
        await consumer.start()
        try:
            found: ReferralResponseV1 | None = None
            deadline = asyncio.get_running_loop().time() + 60
            while found is None and asyncio.get_running_loop().time() < deadline:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        event = responses(SIXTY).read(record.value, record.headers)
                        if event.id == wanted:
                            assert event.source == "/rebond/association"
                            assert record.key == referral.reference.encode()
                            found = event.data
        finally:
            await consumer.stop()
        assert found is not None, "the answer never reached responses.60000-rebonds"
        assert found.referral_id == referral.referral_id and found.answer is Answer.ACCEPT


async def test_an_unrouted_case_waits_in_the_queue_until_the_person_erases_it(
    sqlite_url: str, kafka_secure: Any
) -> None:
    """A case on referrals.unrouted appears in the coordinator's queue; the person's erasure on
    privacy.erasures then withdraws it, with nothing of them left."""
    async with plugged(sqlite_url, kafka_secure) as console:
        await console.user("cora@rebond.test", name="Cora")
        cora = await console.sign_in("cora@rebond.test")
        case = an_unrouted_case(console.clock())
        await publish(kafka_secure, "router", UNROUTED, case)

        async def queued() -> bool:
            return case.reference in (await cora.get("/file")).text

        await eventually(queued)
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


@pytest.mark.parametrize(
    "topic", ["referrals.60000-rebonds", "referrals.unrouted", "routing.decisions"]
)
async def test_the_console_cannot_write_what_it_does_not_own(kafka_secure: Any, topic: str) -> None:
    """As `coordination`, writing a referral, the human queue or a decision is refused."""
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
