"""Erasure and anonymisation of the delivery log (SQLite and PostgreSQL, controlled clock), and
an erasure against a referral's publication through the outbox in every order."""

import asyncio
import hashlib
import json
from collections.abc import Awaitable
from datetime import timedelta
from uuid import uuid4

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import CommunityMailKind, CommunityMailV1
from rebond_contracts.topics import COMMUNITY_MAIL
from rebond_notifier import messages, planning
from rebond_notifier.store import (
    DeliveryStatus,
    DeliveryStore,
    Holder,
    NewDelivery,
    Offer,
    Withdrawn,
    metadata,
)
from rebond_sql.outbox import Message
from rebond_sql.testing import held_up, rows_of, waits_for

from .conftest import at

REFERENCE = "RB-7K3M-Q9XA-2DFE-W8NB"
REFERRAL = "da6e70fb-f7ab-5902-904a-60821a89176b"
INVITATION = "5b0a1d6e-0000-4000-8000-000000000001"
PERSONAL = {"to": "claire.martin@example.org", "body": "Claire Martin, 06 12 34 56 78"}
DAY = 86400.0


def _item(
    channel: str, kind: str = "offer", association: str = "apesa", referral: str = REFERRAL
) -> NewDelivery:
    return NewDelivery(
        referral_id=referral, channel=channel, kind=kind, reference=REFERENCE,
        association_id=association, correlation_id=REFERENCE, payload=PERSONAL,
    )  # fmt: skip


def _offer(referral: str, reference: str, deliveries: list[NewDelivery]) -> Offer:
    """An offer to APESA, its referral a message as `messages.offered` writes it."""
    message = Message(
        topic="referrals.apesa", key=reference, subject=reference,
        value=json.dumps({"referral_id": referral, "contact": PERSONAL}).encode(),
        headers={"ce_type": "fr.rebond.referral.offered", "ce_id": referral},
    )  # fmt: skip
    return Offer(referral, reference, "apesa", deliveries, message)


OFFER = _offer(REFERRAL, REFERENCE, [_item("association_email"), _item("person_email")])
INVITED = _item("person_email", "invitation", association="", referral=INVITATION)


def notices(holders: list[Holder]) -> list[Message]:
    """The erasure's withdrawal notices, as the consumer writes them."""
    return [
        messages.withdrawn(REFERENCE, h.referral_id, AssociationId(h.association_id), at(0),
                           REFERENCE, None)
        for h in holders
    ]  # fmt: skip


class Kafka:
    """The relay's producer: what reached the associations' topics, in order; `hold` keeps the
    acknowledgements waiting; `refuse` fails the next one."""

    def __init__(self) -> None:
        self.topic: list[tuple[str, str]] = []
        self.hold: asyncio.Event | None = None
        self.holding = asyncio.Event()
        self.refuse = False

    async def send(self, message: Message) -> Awaitable[object]:
        if message.topic.startswith("referrals."):
            kind = message.headers["ce_type"].rsplit(".", 1)[1]
            self.topic.append((kind, json.loads(message.value)["referral_id"]))
        ack: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.refuse:
            self.refuse = False
            ack.set_exception(ConnectionError("kafka down"))
        elif self.hold is not None:
            self.holding.set()
            return asyncio.ensure_future(self.hold.wait())
        else:
            ack.set_result(None)
        return ack


async def _tables(store: DeliveryStore) -> dict[str, list[tuple]]:
    return await rows_of(store.database, metadata)


async def test_erasure_keeps_only_the_tombstone_and_tells_every_holder(
    store: DeliveryStore,
) -> None:
    """Erased: every association handed the referral is told (written with the erasure, on its
    topic once flushed), and no row is left about the reference (deliveries, offers, answers,
    invitations, unsent outcomes and answers): only its SHA-256. A repeated erasure tells no
    one again."""
    kafka = Kafka()
    relay = store.relay(kafka.send)
    await store.offer([OFFER], now=at(1))
    await relay.flush()
    await store.enqueue([INVITED], now=at(2))
    [first, *_] = await store.find(REFERRAL)
    await store.finish(first, DeliveryStatus.SENT, 1)
    answer = Message(topic="responses.apesa", key=REFERENCE, value=b"accept", subject=REFERENCE)
    await store.record_answer(REFERRAL, "apesa", "accept", None, answer, reference=REFERENCE)

    assert await store.erase(REFERENCE, notices, now=at(10)) == [Holder("apesa", REFERRAL)]
    await relay.flush()

    tables = await _tables(store)
    assert REFERENCE not in repr(tables) and "apesa" not in repr(tables)
    digest = hashlib.sha256(REFERENCE.encode()).hexdigest()
    assert tables["notifier_tombstones"] == [(digest, at(10))]
    assert await store.due(now=at(100)) == []
    assert await store.erased_among([REFERENCE, "RB-0000-0000-0000-0000"]) == {REFERENCE}
    assert await store.erase(REFERENCE, notices, now=at(11)) == []
    await relay.flush()
    assert kafka.topic == [("offered", REFERRAL), ("withdrawn", REFERRAL)]


async def test_a_withdrawal_kafka_refused_goes_with_the_next_flush(store: DeliveryStore) -> None:
    """Kafka refuses the withdrawal: the erasure stands, its notice waits in the outbox and
    goes with the next flush; the erasure read again writes no second notice."""
    kafka = Kafka()
    relay = store.relay(kafka.send)
    await store.offer([OFFER], now=at(1))
    await relay.flush()
    assert await store.erase(REFERENCE, notices, now=at(10)) == [Holder("apesa", REFERRAL)]
    kafka.refuse = True
    with pytest.raises(ConnectionError):
        await relay.flush()
    assert await store.erased_among([REFERENCE]) == {REFERENCE}
    assert await store.erase(REFERENCE, notices, now=at(11)) == []  # read again
    assert await relay.flush() == 1
    assert kafka.topic == [("offered", REFERRAL), ("withdrawn", REFERRAL), ("withdrawn", REFERRAL)]


async def test_a_decision_read_again_publishes_its_referral_once(store: DeliveryStore) -> None:
    """A decision read again before its referral went out (a failed flush, a crash) or after
    (a rebalance): the referral is published once, its deliveries recorded once."""
    kafka = Kafka()
    relay = store.relay(kafka.send)
    first = await store.offer([OFFER], now=at(1))
    again = await store.offer([OFFER], now=at(2))
    await relay.flush()
    await store.offer([OFFER], now=at(3))
    await relay.flush()
    assert kafka.topic == [("offered", REFERRAL)]
    assert (first.deliveries, again.deliveries) == (2, 0)


async def test_nothing_about_an_erased_reference_is_recorded_or_published(
    store: DeliveryStore,
) -> None:
    """The erasure is read first (bad order): its decision's referral is not published, its
    status e-mails and invitation are not recorded, an answer through a link is refused."""
    kafka = Kafka()
    await store.erase(REFERENCE, notices, now=at(1))

    other = _offer("0b0b0b0b-0000-4000-8000-000000000002", "RB-0THE-R000-0000-0002", [])
    done = await store.offer([OFFER, other], now=at(2))
    await store.relay(kafka.send).flush()

    assert (done.kept, done.erased) == ([other], [OFFER])
    assert kafka.topic == [("offered", other.referral_id)]
    assert await store.enqueue([_item("association_email", "reminder"), INVITED]) == 0
    with pytest.raises(Withdrawn):
        await store.record_answer(REFERRAL, "apesa", "accept", None, OFFER.message,
                                  reference=REFERENCE)  # fmt: skip
    assert REFERENCE not in repr(await _tables(store))


async def test_an_erasure_during_a_referrals_publication_withdraws_it_after_it(
    store: DeliveryStore,
) -> None:
    """The erasure arrives while the referral is being published: the association reads the
    offer, then the withdrawal, never the other way round, and no e-mail is left to send. On
    PostgreSQL the erasure waits for Kafka's acknowledgement (the relay holds the reference's
    lock); a SQLite store's one process gets the order from the relay's flushes taking turns."""
    kafka = Kafka()
    kafka.hold = asyncio.Event()
    relay = store.relay(kafka.send)
    await store.offer([OFFER], now=at(1))
    publishing = asyncio.create_task(relay.flush([REFERENCE]))
    await kafka.holding.wait()
    erasing = asyncio.create_task(store.erase(REFERENCE, notices, now=at(2)))
    held = await held_up(store.database, erasing)  # on SQLite, half a second to go ahead, or not
    if store.database.dialect == "postgresql":
        assert held, "the erasure went ahead while its referral was being published"
    kafka.hold.set()
    assert await publishing == 1
    assert await asyncio.wait_for(erasing, timeout=10) == [Holder("apesa", REFERRAL)]
    await relay.flush()
    assert kafka.topic == [("offered", REFERRAL), ("withdrawn", REFERRAL)]
    assert await store.due(now=at(100)) == []


async def test_a_referral_whose_erasure_is_under_way_is_not_published(
    store: DeliveryStore,
) -> None:
    """The decision is read while its erasure is being committed: its offer waits for it,
    then sees the tombstone and is neither written to publish nor recorded."""
    offering = store.offer([OFFER], now=at(2))
    done = await waits_for(store.database, [store.erasing(REFERENCE, notices, at(1))], offering)
    assert done.erased == [OFFER]
    kafka = Kafka()
    await store.relay(kafka.send).flush()
    assert kafka.topic == [] and REFERENCE not in repr(await _tables(store))


async def test_a_referral_whose_publication_failed_is_still_withdrawn(
    store: DeliveryStore,
) -> None:
    """Kafka did not acknowledge the referral (it may have it all the same): it waits in the
    outbox, and an erasure before the next flush still withdraws it, drops it unsent and
    stops its e-mails."""
    kafka = Kafka()
    kafka.refuse = True
    relay = store.relay(kafka.send)
    await store.offer([OFFER], now=at(1))
    with pytest.raises(ConnectionError):
        await relay.flush()
    assert await store.erase(REFERENCE, notices, now=at(2)) == [Holder("apesa", REFERRAL)]
    await relay.flush()
    assert kafka.topic == [("offered", REFERRAL), ("withdrawn", REFERRAL)]
    assert await store.due(now=at(100)) == []


async def test_a_delivery_erased_while_it_was_sent_records_nothing(store: DeliveryStore) -> None:
    """The person's erasure commits while their e-mail is being sent: its outcome is neither
    recorded nor published, and a delivery recorded since (to which SQLite would have given
    the erased row's id again) is left as it is."""
    await store.enqueue([_item("association_email")], now=at(1))
    [sending] = await store.due(now=at(1))
    await store.erase(REFERENCE, notices, now=at(2))
    other = NewDelivery(INVITATION, "person_email", "invitation", "RB-0THE-R000-0000-0002", "",
                        "RB-0THE-R000-0000-0002", PERSONAL)  # fmt: skip
    await store.enqueue([other], now=at(3))

    await store.finish(sending, DeliveryStatus.SENT, 1, now=at(4))

    [newer] = await store.find(INVITATION)
    assert newer.id != sending.id and newer.status == DeliveryStatus.PENDING
    waiting = await store.database.run(store.outbox.pending)
    assert [m.topic for m in waiting] == ["referrals.apesa"]  # the withdrawal, no outcome


async def test_anonymise_after_retention_only(store: DeliveryStore) -> None:
    """Rows younger than the retention keep their message; older ones lose it (and one still
    pending is given up, its `failed` outcome written to publish)."""
    await store.enqueue([_item("association_email")], now=at(0))
    retention = timedelta(days=30)
    assert await store.anonymise(retention, now=at(29 * DAY)) == 0
    [row] = await store.find(REFERRAL)
    assert row.payload == PERSONAL

    assert await store.anonymise(retention, now=at(31 * DAY)) == 1

    [row] = await store.find(REFERRAL)
    assert row.payload is None and row.status == DeliveryStatus.FAILED
    assert await store.due(now=at(32 * DAY)) == []
    [outcome] = await store.database.run(store.outbox.pending)
    assert json.loads(outcome.value)["outcome"] == "failed"


async def test_an_erasure_cancels_a_held_peer_introduction_and_tells_no_outcome(
    store: DeliveryStore,
) -> None:
    """A peer introduction about the person (to them and to the volunteer) waits unsent: the
    person's erasure deletes both; a mail about a volunteer alone stays; and a sent
    introduction publishes no `DeliveryV1` (it is not always the person's own e-mail)."""

    def mail(kind: CommunityMailKind, reference: str | None) -> NewDelivery:
        payload = CommunityMailV1(
            mail_id=uuid4(), kind=kind, to="pair@example.org", subject="Une mise en relation",
            text="Claire, 06 12 34 56 78", at=at(0), reference=reference,
        )  # fmt: skip
        [item] = planning.for_community_mail(
            COMMUNITY_MAIL.envelope(payload, subject=reference or "v", correlationid="c")
        )
        return item

    to_person = mail(CommunityMailKind.PEER_INTRODUCTION, REFERENCE)
    to_volunteer = mail(CommunityMailKind.PEER_INTRODUCTION, REFERENCE)
    confirm = mail(CommunityMailKind.VOLUNTEER_CONFIRM, None)
    assert await store.enqueue([to_person, to_volunteer, confirm], now=at(1)) == 3
    [held] = await store.find(to_person.referral_id)
    assert messages.outcome(held, DeliveryStatus.SENT.value, 1, at(2)) is None

    await store.erase(REFERENCE, notices, now=at(2))

    assert await store.find(to_person.referral_id) == []
    assert await store.find(to_volunteer.referral_id) == []
    assert [d.kind for d in await store.find(confirm.referral_id)] == ["vol_confirm"]
    assert await store.enqueue([mail(CommunityMailKind.PEER_NONE, REFERENCE)]) == 0
