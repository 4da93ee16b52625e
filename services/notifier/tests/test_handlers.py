"""The notifier's entry points in process, without a broker: its Kafka handlers as `build` wires
them (FastStream's in-memory broker, a real SQLite delivery log) and the answer page (ASGI)."""

import json
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import ErasureRequestedV1
from rebond_contracts.topics import DECISIONS, ERASURES, referrals
from rebond_notifier.app import Notifier, build
from rebond_notifier.planning import ERASURE_NAMESPACE
from rebond_notifier.settings import NotifierSettings
from rebond_notifier.signing import Action, AnswerClaims, make_token
from rebond_notifier.store import DeliveryStore, migrate
from rebond_notifier.templates import Mail
from rebond_notifier.web import build_router
from rebond_sql.outbox import Message
from rebond_sql.testing import acknowledged
from rebond_testing.serving import ready_within, store_loss_seen

from .conftest import make_decision, sqlite_store

KEY = b"link-key-for-the-handler-tests"


class NoMail:
    async def send(self, mail: Mail) -> None:
        raise AssertionError("no dispatcher runs here")


@pytest.fixture
async def notifier(tmp_path: Path) -> AsyncIterator[Notifier]:
    """The notifier `build` makes (its store migrated and open), not connected to anything."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'log.sqlite3'}"
    migrate(url)
    notifier = build(NotifierSettings(environment="test", database_url=url), mailer=NoMail())
    yield notifier
    await notifier.store.close()


async def test_a_referral_then_its_erasure_reach_the_associations_topic_in_that_order(
    notifier: Notifier,
) -> None:
    """A decision read, then its person's erasure: APESA's topic gets the offer (published
    before the decision's handler returned), then the withdrawal of that very referral; the
    offer's e-mails were recorded, and the erasure deleted them and recorded the withdrawal's
    e-mail to APESA and the confirmation to the person."""
    decision = make_decision(AssociationId.APESA)
    assert decision.referral is not None
    reference, referral_id = decision.reference, str(decision.referral.referral_id)
    topic: list[tuple[str, Any]] = []

    @notifier.broker.subscriber(referrals(AssociationId.APESA).name)
    async def association(message: KafkaMessage) -> None:
        topic.append((message.headers["ce_type"], json.loads(message.body)["referral_id"]))

    async with TestKafkaBroker(notifier.broker) as broker:
        event = DECISIONS.envelope(decision, subject=reference, correlationid=reference)
        await broker.publish(event.kafka_value(), DECISIONS.name, headers=event.kafka_headers(),
                             key=reference.encode())  # fmt: skip
        recorded = [d.channel for d in await notifier.store.find(referral_id)]
        assert recorded == ["association_email", "person_email"]  # no webhook in the packaged file
        erasure = ERASURES.envelope(
            ErasureRequestedV1(reference=reference, requested_at=datetime.now(UTC)),
            subject=reference, correlationid=reference,
        )  # fmt: skip
        await broker.publish(erasure.kafka_value(), ERASURES.name,
                             headers=erasure.kafka_headers(), key=reference.encode())  # fmt: skip
    assert topic == [
        ("fr.rebond.referral.offered", referral_id),
        ("fr.rebond.referral.withdrawn", referral_id),
    ]
    # The offer's deliveries are deleted; the withdrawal's e-mail is recorded, keeping no
    # reference, and so is the person's confirmation, whose address is in no other row.
    left = await notifier.store.find(referral_id)
    assert [(d.channel, d.kind, d.reference) for d in left] == [
        ("association_email", "withdrawal", "")
    ]
    confirmation = await notifier.store.find(str(uuid.uuid5(ERASURE_NAMESPACE, reference)))
    assert [(d.kind, d.reference) for d in confirmation] == [("p_erased", "")]
    assert await notifier.store.people([reference]) == {}
    assert await notifier.store.erased_among([reference]) == {reference}


class Kafka:
    """The relay's producer, away until `back` is set."""

    def __init__(self) -> None:
        self.back = False
        self.published: list[Message] = []

    async def send(self, message: Message) -> Awaitable[object]:
        if not self.back:
            raise ConnectionError("kafka is away")
        self.published.append(message)
        return acknowledged()


async def test_an_answer_given_while_kafka_is_away_is_recorded_then_published(
    tmp_path: Path,
) -> None:
    """Kafka away: the accept link's page still says "enregistrée" (the answer and its message
    committed together) and asks for its publication; the answer goes out once Kafka is back,
    once, and the link then says it was given."""
    store: DeliveryStore = await sqlite_store(tmp_path)
    kafka, to_publish = Kafka(), []
    app = FastAPI()
    app.include_router(build_router(store, KEY, to_publish.append, lambda: datetime.now(UTC)))
    claims = AnswerClaims(
        referral_id=uuid.uuid4(), reference="RB-7K3M-Q9XA-2DFE-W8NB",
        association_id=AssociationId.APESA, action=Action.ACCEPT, expires_at=2**40,
    )  # fmt: skip
    link = f"/reponse/{make_token(KEY, claims)}"
    transport = httpx.ASGITransport(app=app)
    relay = store.relay(kafka.send)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://n") as client:
            page = await client.post(link)
            assert page.status_code == 200 and "acceptée" in page.text, page.text
            assert to_publish == [claims.reference]
            with pytest.raises(ConnectionError):
                await relay.flush([claims.reference])  # the round it asked for: Kafka away
            kafka.back = True
            assert await relay.flush() == 1
            assert await relay.flush() == 0
            assert (await client.post(link)).status_code == 409
    finally:
        await store.close()
    [answer] = kafka.published
    assert answer.topic == "responses.apesa" and answer.key == claims.reference
    assert answer.headers["ce_type"] == "fr.rebond.referral.answered"


async def test_readiness_names_the_store_once_it_no_longer_answers(tmp_path: Path) -> None:
    """/readyz (Kafka connected: FastStream's in-memory broker) is 200 once the store is open
    and answers its `SELECT 1`, and 503 naming the store once its database does not (here
    closed); /healthz stays alive."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'log.sqlite3'}"
    settings = NotifierSettings(
        environment="test", database_url=url, kafka_bootstrap_servers=f"{uuid.uuid4().hex}:9092"
    )  # a link of its own: no other test's outage
    notifier = build(settings, mailer=NoMail())
    app = notifier.web
    async with (
        TestKafkaBroker(notifier.broker),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as client,
    ):
        assert await ready_within(client), "the notifier never got ready"
        await store_loss_seen(client, notifier.store.close, kafka="connected")
