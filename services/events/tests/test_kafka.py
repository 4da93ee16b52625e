"""The events service on a real Kafka broker: invitations from the router's invitees, announcements."""

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from rebond_contracts.payloads import ErasureRequestedV1, InvitationContactV1, InviteeV1
from rebond_contracts.topics import (
    CONFERENCES,
    ERASURES,
    INVITATIONS,
    INVITEES,
    Service,
    dead_letters,
)
from rebond_events.app import create_app
from rebond_events.store import ErasureRow, InvitationRow, OutboxRow, build_engine
from rebond_sql.erasure import reference_digest

from .conftest import BASE, KEYS, in_days, settings_for

pytestmark = pytest.mark.kafka
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
Records = list[ConsumerRecord[bytes, bytes]]


def new_reference() -> str:
    return "RB-" + "-".join("".join(secrets.choice(CROCKFORD) for _ in range(4)) for _ in range(4))


@pytest.fixture
async def live(kafka_bootstrap: str, sqlite_url: str) -> AsyncIterator[Any]:
    """The events app connected to the real broker (its own consumer group), ready."""
    import httpx

    settings = settings_for(
        sqlite_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        group_id=f"test-events-{uuid.uuid4().hex[:8]}",
        outbox_interval_s=0.5,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        for _ in range(240):
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.25)
        else:
            pytest.fail("events never connected to Kafka")
        yield client


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
    bootstrap: str, topic: str, key: bytes, done: Callable[[Records], bool], timeout_s: float = 60
) -> Records:
    """Records of `topic` with `key`, read from the start until `done` says enough."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    found: Records = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not done(found) and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += [r for r in records if r.key == key]
    finally:
        await consumer.stop()
    return found


def invitee(reference: str, email: str) -> tuple[bytes, bytes, dict[str, str]]:
    data = InviteeV1(
        reference=reference,
        contact=InvitationContactV1(first_name="Claire", email=email, region="75", department="33"),
        decided_at=datetime.now(UTC),
    )
    event = INVITEES.envelope(data, subject=reference, correlationid=reference)
    return reference.encode(), event.kafka_value(), event.kafka_headers()


async def _conference_in_bordeaux(live: Any) -> str:
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
    event_id = await _conference_in_bordeaux(live)
    reference = new_reference()
    first = invitee(reference, f"claire-{reference}@example.org")
    sentinel = invitee(reference, f"other-{reference}@example.org")
    # The same invitee twice (a redelivery), then another on the same partition, read after it.
    await publish(kafka_bootstrap, [first, first, sentinel])

    def emails(records: Records) -> list[str]:
        return [INVITATIONS.read(r.value, r.headers).data.email for r in records]

    found = await collect(
        kafka_bootstrap, INVITATIONS.name, reference.encode(),
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
    announced = await collect(kafka_bootstrap, CONFERENCES.name, event_id.encode(), bool)
    assert CONFERENCES.read(announced[0].value, announced[0].headers).data.change == "scheduled"


async def test_an_unreadable_invitee_is_dead_lettered(live: Any, kafka_bootstrap: str) -> None:
    """A record that is not an invitee goes to deadletter.events with the error."""
    key = new_reference().encode()
    await publish(kafka_bootstrap, [(key, b"not json", {"ce_type": INVITEES.event_type})])
    found = await collect(kafka_bootstrap, dead_letters(Service.EVENTS).name, key, bool)
    assert found, "nothing dead-lettered"
    headers = dict(found[0].headers)
    assert b"ce_" in headers["x-error"] or b"schema version" in headers["x-error"]


async def test_an_invitee_read_after_its_erasure_invites_no_one(
    live: Any, kafka_bootstrap: str, sqlite_url: str
) -> None:
    """The erasure is read first (`privacy.erasures` ahead of `routing.invitees`, as after a
    lag or a replayed dead letter): the person is not invited, and nothing of them is kept;
    another person's invitee, behind it on the same partition, is."""
    await _conference_in_bordeaux(live)
    erased, other = new_reference(), new_reference()
    request = ErasureRequestedV1(reference=erased, requested_at=datetime.now(UTC))
    erasure = ERASURES.envelope(request, subject=erased, correlationid=erased)
    await publish(
        kafka_bootstrap, [(erased.encode(), erasure.kafka_value(), erasure.kafka_headers())],
        topic=ERASURES.name,
    )  # fmt: skip
    engine = build_engine(sqlite_url)
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not _erased(engine, erased):
            assert asyncio.get_running_loop().time() < deadline, "the erasure was not read"
            await asyncio.sleep(0.1)
        late = invitee(erased, f"claire-{erased}@example.org")
        _, behind, headers = invitee(other, f"other-{other}@example.org")
        await publish(kafka_bootstrap, [late, (erased.encode(), behind, headers)])
        found = await collect(kafka_bootstrap, INVITATIONS.name, other.encode(), bool)
        assert found, "the other person was not invited"
        with Session(engine) as session:
            assert (
                session.scalars(
                    select(InvitationRow.id).where(InvitationRow.reference == erased)
                ).all()
                == []
            )
            assert erased.encode() not in b"".join(session.scalars(select(OutboxRow.key)).all())
    finally:
        engine.dispose()


def _erased(engine: Engine, reference: str) -> bool:
    with Session(engine) as session:
        return session.get(ErasureRow, reference_digest(reference)) is not None
