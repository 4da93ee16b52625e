"""The events service's Kafka handlers, on FastStream's test broker (the real broker's part,
acknowledgements and offsets, is `test_kafka.py`'s): invitees become invitations once,
erasures are honoured whatever the order, unreadable records are dead-lettered. Invitees and
peer requests are read in batches (the test broker delivers a published batch as one): one
store transaction for the whole batch, the same invitations and matches as one record at a
time, and a record that can never succeed dead-lettered without the others."""

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
    PeerContactV1,
    PeerMatchV1,
    PeerRequestV1,
)
from rebond_contracts.topics import (
    ERASURES,
    INVITATIONS,
    INVITEES,
    PEER_MATCHES,
    PEER_REQUESTS,
    Service,
    dead_letters,
)
from rebond_events import inviting
from rebond_events.app import Events, build
from rebond_events.models import EventIn
from rebond_events.store import migrate
from rebond_kafka.consume import DeadLetters, Received, subscribe
from rebond_sql.testing import statements
from rebond_testing import new_reference

from .conftest import in_days, settings_for

ERASED, OTHER = "RB-7K3M-Q9XA-2DFE-W8NB", "RB-0HCK-9645-C57J-B5Q9"


@dataclass
class Handlers:
    events: Events
    broker: KafkaBroker
    invitations: list[InvitationV1] = field(default_factory=list)
    steps: list[PeerMatchV1] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)

    async def publish(self, topic: str, value: bytes, headers: dict[str, str], key: str) -> None:
        await self.broker.publish(value, topic, key=key.encode(), headers=headers)


@pytest.fixture
async def handlers(sqlite_url: str) -> AsyncIterator[Handlers]:
    """The service built on a test broker, with a conference in Gironde, and readers of what
    it publishes: invitations, peer match steps and dead letters."""
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

    async def on_step(received: Received[PeerMatchV1]) -> None:
        found.steps.append(received.data)

    subscribe(
        broker, PEER_MATCHES, on_step, dead_letters=DeadLetters(broker, Service.INTAKE),
        group_id="test-steps", description="the test's reader",
    )  # fmt: skip
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


def outbox_steps(sent: list[str]) -> list[str]:
    """What the statements `sent` did to the outbox, in order (INSERT, SELECT, DELETE)."""
    return [statement.split()[0] for statement in sent if "events_outbox" in statement]


async def publish(handlers: Handlers, topic: str, records: list[tuple[bytes, dict[str, str]]],
                  together: bool) -> None:  # fmt: skip
    """`records` as one batch (the test broker gives a batch one set of headers: the first
    record's; each payload holds its own reference), or one at a time."""
    if together:
        await handlers.broker.publish_batch(
            *[value for value, _ in records], topic=topic, headers=records[0][1]
        )
    else:
        for value, headers in records:
            await handlers.broker.publish(value, topic, headers=headers)


def five_invitees() -> tuple[list[str], list[tuple[bytes, dict[str, str]]]]:
    """Four people, the second of them read twice (a redelivery within the batch)."""
    people = [new_reference() for _ in range(4)]
    order = [people[0], people[1], people[1], people[2], people[3]]
    return people, [invitee(r, f"{r.lower()}@example.org") for r in order]


@pytest.mark.parametrize("together", [True, False], ids=["batch", "one-at-a-time"])
async def test_a_batch_of_invitees_invites_whom_one_at_a_time_would(
    handlers: Handlers, together: bool
) -> None:
    """Each person of a batch is invited once, in order, a person read twice within it too,
    exactly as when the same records come one at a time."""
    people, records = five_invitees()
    await publish(handlers, INVITEES.name, records, together)
    assert [i.reference for i in handlers.invitations] == people
    assert not handlers.dead


async def test_a_batch_of_invitees_is_written_and_published_once(handlers: Handlers) -> None:
    """Five invitees read together: their four invitations are written to the outbox in one
    transaction, read back and deleted once acknowledged, once for the batch, not per record."""
    _, records = five_invitees()
    with statements() as sent:
        await publish(handlers, INVITEES.name, records, together=True)
    assert len(handlers.invitations) == 4
    assert outbox_steps(sent) == ["INSERT", "SELECT", "DELETE"]


async def test_a_record_that_can_never_succeed_is_dead_lettered_and_the_batch_goes_on(
    handlers: Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invitee whose handling fails for good (not the store nor Kafka) sends the batch one
    record at a time: that record goes to deadletter.events, the others are invited."""
    people, records = five_invitees()
    poisoned = people[2]
    invite = inviting.invite

    def failing(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("reference", args[3] if len(args) > 3 else None) == poisoned:
            raise ValueError("cannot be invited")
        return invite(*args, **kwargs)

    monkeypatch.setattr(inviting, "invite", failing)
    await publish(handlers, INVITEES.name, records, together=True)
    assert [i.reference for i in handlers.invitations] == [people[0], people[1], people[3]]
    [letter] = handlers.dead
    assert letter["error"] == "ValueError: cannot be invited"


def peer_requests(references: list[str]) -> list[tuple[bytes, dict[str, str]]]:
    found = []
    for reference in references:
        request = PeerRequestV1(
            reference=reference, region="75", stage="after_liquidation", sector="I",  # type: ignore[arg-type]
            contact=PeerContactV1(first_name="Claire", email=f"{reference.lower()}@example.org"),
            requested_at=datetime.now(UTC),
        )  # fmt: skip
        envelope = PEER_REQUESTS.envelope(request, subject=reference, correlationid=reference)
        found.append((envelope.kafka_value(), envelope.kafka_headers()))
    return found


@pytest.mark.parametrize("together", [True, False], ids=["batch", "one-at-a-time"])
async def test_a_batch_of_peer_requests_is_considered_once_each_in_one_transaction(
    handlers: Handlers, together: bool
) -> None:
    """Three requests (one read twice) with no volunteer: each gets one `unmatched` step, as
    one at a time would; together, in one transaction and one publication."""
    people = [new_reference() for _ in range(3)]
    with statements() as sent:
        await publish(
            handlers, PEER_REQUESTS.name, peer_requests([*people[:2], people[1], people[2]]),
            together,
        )  # fmt: skip
    steps = [(step.reference, step.status.value) for step in handlers.steps]
    assert steps == [(reference, "unmatched") for reference in people]
    assert not handlers.dead
    if together:
        assert outbox_steps(sent) == ["INSERT", "SELECT", "DELETE"]
