"""The events service's Kafka handlers, on FastStream's test broker (the real broker's part,
acknowledgements and offsets, is `test_kafka.py`'s): invitees become invitations once,
erasures are honoured whatever the order, unreadable records are dead-lettered."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from rebond_contracts.payloads import (
    ErasureRequestedV1,
    InvitationContactV1,
    InvitationV1,
    InviteeV1,
)
from rebond_contracts.topics import ERASURES, INVITATIONS, INVITEES, Service, dead_letters
from rebond_events.app import Events, build
from rebond_events.models import EventIn
from rebond_events.store import migrate
from rebond_kafka.consume import DeadLetters, Received, subscribe

from .conftest import in_days, settings_for

ERASED, OTHER = "RB-7K3M-Q9XA-2DFE-W8NB", "RB-0HCK-9645-C57J-B5Q9"


@dataclass
class Handlers:
    events: Events
    broker: KafkaBroker
    invitations: list[InvitationV1] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)

    async def publish(self, topic: str, value: bytes, headers: dict[str, str], key: str) -> None:
        await self.broker.publish(value, topic, key=key.encode(), headers=headers)


@pytest.fixture
async def handlers(sqlite_url: str) -> AsyncIterator[Handlers]:
    """The service built on a test broker, with a conference in Gironde, and readers of what
    it publishes: invitations and dead letters."""
    migrate(sqlite_url)
    broker = KafkaBroker()
    events = build(settings_for(sqlite_url), broker=broker)
    bordeaux = EventIn(
        title="Conférence du rebond à Bordeaux", kind="conference", starts_at=in_days(15),
        ends_at=in_days(15, 20), venue_address="12 place de la Bourse", city="Bordeaux",
        region="75", department="33", capacity=50,
    )  # fmt: skip
    await events.conferences.create_event("second-souffle", bordeaux)
    found = Handlers(events, broker)

    async def on_invitation(received: Received[InvitationV1]) -> None:
        found.invitations.append(received.data)

    subscribe(
        broker, INVITATIONS, on_invitation, dead_letters=DeadLetters(broker, Service.NOTIFIER),
        group_id="test-invitations", description="the test's reader",
    )  # fmt: skip

    @broker.subscriber(dead_letters(Service.EVENTS).name)
    async def on_dead(body: Any) -> None:
        found.dead.append(body)

    async with TestKafkaBroker(broker) as test:
        found.broker = test
        yield found
    await events.store.close()


def invitee(reference: str, email: str) -> tuple[bytes, dict[str, str]]:
    data = InviteeV1(
        reference=reference,
        contact=InvitationContactV1(first_name="Claire", email=email, region="75", department="33"),
        decided_at=datetime.now(UTC),
    )
    event = INVITEES.envelope(data, subject=reference, correlationid=reference)
    return event.kafka_value(), event.kafka_headers()


async def test_an_invitee_is_invited_once(handlers: Handlers) -> None:
    """An invitee gives one invitation to the conference of their department; the same invitee
    read again gives none."""
    value, headers = invitee(OTHER, "claire@example.org")
    await handlers.publish(INVITEES.name, value, headers, OTHER)
    await handlers.publish(INVITEES.name, value, headers, OTHER)
    [invitation] = handlers.invitations
    assert (invitation.reference, invitation.email, invitation.match) == (
        OTHER, "claire@example.org", "department",
    )  # fmt: skip
    assert invitation.conference.city == "Bordeaux" and not handlers.dead


async def test_an_unreadable_invitee_is_dead_lettered(handlers: Handlers) -> None:
    """A record that is not an invitee goes to deadletter.events with the error, and the next
    one is read."""
    await handlers.publish(INVITEES.name, b"not json", {"ce_type": INVITEES.event_type}, OTHER)
    value, headers = invitee(OTHER, "claire@example.org")
    await handlers.publish(INVITEES.name, value, headers, OTHER)
    [letter] = handlers.dead
    assert "schema version" in letter["error"] and letter["topic"] == INVITEES.name
    assert len(handlers.invitations) == 1


async def test_an_invitee_read_after_its_erasure_invites_no_one(handlers: Handlers) -> None:
    """The erasure is read first (as after a lag or a replayed dead letter): the person is not
    invited; another person's invitee, read after, is."""
    erasure = ERASURES.envelope(
        ErasureRequestedV1(reference=ERASED, requested_at=datetime.now(UTC)),
        subject=ERASED, correlationid=ERASED,
    )  # fmt: skip
    await handlers.publish(ERASURES.name, erasure.kafka_value(), erasure.kafka_headers(), ERASED)
    for reference in (ERASED, OTHER):
        value, headers = invitee(reference, f"{reference.lower()}@example.org")
        await handlers.publish(INVITEES.name, value, headers, reference)
    assert [invitation.reference for invitation in handlers.invitations] == [OTHER]
