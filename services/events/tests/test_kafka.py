"""The events service on a real Kafka broker: an invitee becomes one invitation, published
(acknowledged) before the invitee's offset moves on; a redelivery publishes nothing new; the
conference is announced. The handlers' other cases run on the test broker (`test_consumer.py`)."""

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from rebond_contracts.payloads import InvitationContactV1, InviteeV1
from rebond_contracts.topics import CONFERENCES, INVITATIONS, INVITEES
from rebond_events.app import create_app
from rebond_events.settings import EventsSettings
from rebond_testing import TopicProbe, new_reference, until_async

from .conftest import BASE, KEYS, in_days, settings_for

pytestmark = pytest.mark.kafka
Records = list[ConsumerRecord[bytes, bytes]]


@pytest.fixture
async def live(kafka_bootstrap: str, sqlite_url: str) -> AsyncIterator[Any]:
    """The events app connected to the real broker (its own consumer group), ready."""
    settings = settings_for(
        sqlite_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        group_id=f"test-events-{uuid.uuid4().hex[:8]}",
        outbox_interval_s=0.5,
    )
    async with connected(settings) as client:
        yield client


@asynccontextmanager
async def connected(settings: EventsSettings) -> AsyncIterator[Any]:
    """A client of the events app `create_app` makes from `settings`, its lifespan run and
    Kafka connected (`/readyz` 200), until the block ends."""
    import httpx

    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        assert await until_async(lambda: ready_now(client), within_s=60, every_s=0.25), (
            "events never connected to Kafka"
        )
        yield client


async def ready_now(client: Any) -> bool:
    """Whether the app answers ready."""
    return bool((await client.get("/readyz")).status_code == 200)


async def publish(
    bootstrap: str, records: list[tuple[bytes, bytes, dict[str, str]]], topic: str = INVITEES.name
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(
                topic, value, key=key,
                headers=[(k, v.encode()) for k, v in headers.items()],
            )  # fmt: skip
    finally:
        await producer.stop()


async def collect(
    bootstrap: str, topic: str, key: str, done: Callable[[Records], bool], timeout_s: float = 60
) -> Records:
    """Records of `topic` with `key`, read from the start until `done` says enough."""
    async with TopicProbe(bootstrap, [topic], from_beginning=True) as probe:
        await probe.until(lambda _: done(probe.about(key)), timeout_s)
        return probe.about(key)


def invitee(reference: str, email: str) -> tuple[bytes, bytes, dict[str, str]]:
    data = InviteeV1(
        reference=reference,
        contact=InvitationContactV1(first_name="Claire", email=email, region="75", department="33"),
        decided_at=datetime.now(UTC),
    )
    event = INVITEES.envelope(data, subject=reference, correlationid=reference)
    return reference.encode(), event.kafka_value(), event.kafka_headers()


async def conference_in_bordeaux(live: Any) -> str:
    """A conference in the department of the decisions below; its id."""
    created = await live.post(
        "/v1/events",
        json={
            "title": "Conférence du rebond à Bordeaux", "kind": "conference",
            "starts_at": in_days(15).isoformat(), "ends_at": in_days(15, 20).isoformat(),
            "venue_address": "12 place de la Bourse", "city": "Bordeaux",
            "region": "75", "department": "33", "capacity": 50,
        },
        headers={"X-API-Key": KEYS["second-souffle"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_a_consenting_person_is_invited_once_per_event(
    live: Any, kafka_bootstrap: str
) -> None:
    """An invitee gives one invitation event; its redelivery gives none."""
    event_id = await conference_in_bordeaux(live)
    reference = new_reference()
    first = invitee(reference, f"claire-{reference}@example.org")
    sentinel = invitee(reference, f"other-{reference}@example.org")
    # The same invitee twice (a redelivery), then another on the same partition, read after it.
    await publish(kafka_bootstrap, [first, first, sentinel])

    def emails(records: Records) -> list[str]:
        return [INVITATIONS.read(r.value, r.headers).data.email for r in records]

    found = await collect(
        kafka_bootstrap, INVITATIONS.name, reference,
        lambda records: f"other-{reference}@example.org" in emails(records),
    )  # fmt: skip
    assert sorted(emails(found)) == sorted(
        [f"claire-{reference}@example.org", f"other-{reference}@example.org"]
    )
    invitation = INVITATIONS.read(found[0].value, found[0].headers)
    assert invitation.source == "/rebond/events" and invitation.correlationid == reference
    assert invitation.id == str(invitation.data.invitation_id)
    assert invitation.data.match == "department"
    assert str(invitation.data.conference.event_id) == event_id
    assert invitation.data.conference.page_url == f"{BASE}/evenements/{event_id}"
    announced = await collect(kafka_bootstrap, CONFERENCES.name, event_id, bool)
    assert CONFERENCES.read(announced[0].value, announced[0].headers).data.change == "scheduled"
