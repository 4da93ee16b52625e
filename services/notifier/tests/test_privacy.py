"""Erasure and anonymisation of the delivery log (SQLite and PostgreSQL, controlled clock), and
an erasure against a referral's publication in every order."""

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from rebond_notifier.store import (
    FAILED,
    SENT,
    DeliveryStore,
    Holder,
    NewDelivery,
    Offer,
    Withdrawn,
    metadata,
    old_erasures,
)
from rebond_sql.testing import rows_of

REFERENCE = "RB-7K3M-Q9XA-2DFE-W8NB"
REFERRAL = "da6e70fb-f7ab-5902-904a-60821a89176b"
INVITATION = "5b0a1d6e-0000-4000-8000-000000000001"
PERSONAL = {"to": "claire.martin@example.org", "body": "Claire Martin, 06 12 34 56 78"}
DAY = 86400.0


@pytest.fixture
async def store(sql_url: str) -> AsyncIterator[DeliveryStore]:
    store = DeliveryStore.from_url(sql_url)
    await store.create_schema()
    yield store
    await store.close()


def _item(
    channel: str, kind: str = "offer", association: str = "apesa", referral: str = REFERRAL
) -> NewDelivery:
    return NewDelivery(
        referral_id=referral, channel=channel, kind=kind, reference=REFERENCE,
        association_id=association, correlation_id=REFERENCE, payload=PERSONAL,
    )  # fmt: skip


OFFER = Offer(REFERRAL, REFERENCE, "apesa", [_item("association_email"), _item("person_email")])
INVITED = _item("person_email", "invitation", association="", referral=INVITATION)


class Kafka:
    """What reached the associations' topics, in order; `hold` keeps a publication waiting."""

    def __init__(self) -> None:
        self.topic: list[tuple[str, str]] = []
        self.hold: asyncio.Event | None = None
        self.holding = asyncio.Event()

    async def _wait(self) -> None:
        if self.hold is not None:
            self.holding.set()
            await self.hold.wait()

    async def publish(self, offers: list[Offer]) -> None:
        await self._wait()
        self.topic += [("offered", o.referral_id) for o in offers]

    async def withdraw(self, holders: list[Holder]) -> None:
        await self._wait()
        self.topic += [("withdrawn", h.referral_id) for h in holders]


async def _tables(store: DeliveryStore) -> dict[str, list[tuple]]:
    return await rows_of(store.database, metadata)


async def test_erasure_keeps_only_the_tombstone_and_tells_every_holder(
    store: DeliveryStore,
) -> None:
    """Erased: every association handed the referral is told (in the erasure's transaction),
    and no row is left about the reference (deliveries, offers, answers, invitations): only
    its SHA-256. A repeated erasure tells no one again."""
    kafka = Kafka()
    await store.publish_referrals([OFFER], kafka.publish, now=1)
    await store.enqueue([INVITED], now=2)
    [first, *_] = await store.find(REFERRAL)
    await store.finish(first.id, SENT, 1)

    async def published() -> None:
        return None

    await store.record_answer(REFERRAL, "apesa", "accept", None, published, reference=REFERENCE)

    assert await store.erase(REFERENCE, kafka.withdraw, now=10) == [Holder("apesa", REFERRAL)]

    tables = await _tables(store)
    assert REFERENCE not in repr(tables) and "apesa" not in repr(tables)
    assert tables["notifier_tombstones"] == [(hashlib.sha256(REFERENCE.encode()).hexdigest(), 10)]
    assert await store.due(now=100) == []
    assert await store.erased_among([REFERENCE, "RB-0000-0000-0000-0000"]) == {REFERENCE}
    assert await store.erase(REFERENCE, kafka.withdraw, now=11) == []
    assert kafka.topic == [("offered", REFERRAL), ("withdrawn", REFERRAL)]


async def test_a_withdrawal_that_fails_leaves_everything_for_the_next_try(
    store: DeliveryStore,
) -> None:
    """Kafka refuses the withdrawal: nothing is erased yet, so the erasure read again still
    finds whom to tell."""
    kafka = Kafka()
    await store.publish_referrals([OFFER], kafka.publish, now=1)

    async def refused(_holders: list[Holder]) -> None:
        raise ConnectionError("kafka down")

    with pytest.raises(ConnectionError):
        await store.erase(REFERENCE, refused, now=10)
    assert await store.erased_among([REFERENCE]) == set()
    assert await store.erase(REFERENCE, kafka.withdraw, now=11) == [Holder("apesa", REFERRAL)]


async def test_nothing_about_an_erased_reference_is_recorded_or_published(
    store: DeliveryStore,
) -> None:
    """The erasure is read first (bad order): its decision's referral is not published, its
    status e-mails and invitation are not recorded, an answer through a link is refused."""
    kafka = Kafka()
    await store.erase(REFERENCE, kafka.withdraw, now=1)

    other = Offer("0b0b0b0b-0000-4000-8000-000000000002", "RB-0THE-R000-0000-0002", "apesa", [])
    done = await store.publish_referrals([OFFER, other], kafka.publish, now=2)

    assert (done.published, done.erased) == ([other], [OFFER])
    assert kafka.topic == [("offered", other.referral_id)]
    assert await store.enqueue([_item("association_email", "reminder"), INVITED]) == 0

    async def published() -> None:
        kafka.topic.append(("answered", REFERRAL))

    with pytest.raises(Withdrawn):
        await store.record_answer(REFERRAL, "apesa", "accept", None, published,
                                  reference=REFERENCE)  # fmt: skip
    assert REFERENCE not in repr(await _tables(store))
    assert kafka.topic == [("offered", other.referral_id)]


async def test_an_erasure_during_a_referrals_publication_withdraws_it_after_it(
    store: DeliveryStore,
) -> None:
    """The erasure arrives while the referral is being published: it waits for Kafka's
    acknowledgement and the commit, then withdraws it; the association reads the offer, then
    the withdrawal, and no e-mail is left to send."""
    kafka = Kafka()
    kafka.hold = asyncio.Event()
    publishing = asyncio.create_task(store.publish_referrals([OFFER], kafka.publish, now=1))
    await kafka.holding.wait()
    erasing = asyncio.create_task(store.erase(REFERENCE, Kafka().withdraw, now=2))
    done, _ = await asyncio.wait([erasing], timeout=0.5)
    assert not done, "the erasure went ahead while its referral was being published"
    kafka.hold.set()
    assert (await publishing).published == [OFFER]
    holders = await asyncio.wait_for(erasing, timeout=10)
    assert holders == [Holder("apesa", REFERRAL)]
    assert await store.due(now=100) == []


async def test_a_referral_whose_erasure_is_under_way_is_not_published(
    store: DeliveryStore,
) -> None:
    """The decision is read while its erasure is being committed: its referral waits for it,
    then sees the tombstone and is neither published nor recorded."""
    eraser = Kafka()
    eraser.hold = asyncio.Event()
    erasing = asyncio.create_task(store.erase(REFERENCE, eraser.withdraw, now=1))
    await eraser.holding.wait()
    kafka = Kafka()
    publishing = asyncio.create_task(store.publish_referrals([OFFER], kafka.publish, now=2))
    done, _ = await asyncio.wait([publishing], timeout=0.5)
    assert not done, "the referral went ahead while its erasure was under way"
    eraser.hold.set()
    await erasing
    assert (await asyncio.wait_for(publishing, timeout=10)).erased == [OFFER]
    assert kafka.topic == [] and REFERENCE not in repr(await _tables(store))


async def test_a_referral_whose_publication_failed_is_still_withdrawn(
    store: DeliveryStore,
) -> None:
    """Kafka did not acknowledge the referral (it may have it all the same): no delivery is
    recorded, but an erasure before the decision is read again still withdraws it."""

    async def in_doubt(_offers: list[Offer]) -> None:
        raise TimeoutError("no acknowledgement")

    with pytest.raises(TimeoutError):
        await store.publish_referrals([OFFER], in_doubt, now=1)
    assert await store.find(REFERRAL) == []
    kafka = Kafka()
    assert await store.erase(REFERENCE, kafka.withdraw, now=2) == [Holder("apesa", REFERRAL)]


async def test_erasures_kept_by_an_older_notifier_become_tombstones(sql_url: str) -> None:
    """An older notifier kept each erased reference in clear (`notifier_erasures`) beside its
    rows: on start each becomes a tombstone and its rows go."""
    older = DeliveryStore.from_url(sql_url)
    await older.create_schema()
    await older.enqueue([_item("association_email")], now=1)
    await older.database.run(
        lambda c: (
            old_erasures.create(c),
            c.execute(old_erasures.insert().values(reference=REFERENCE, erased_at=5.0)),
        )
    )
    await older.close()

    store = DeliveryStore.from_url(sql_url)
    await store.create_schema()
    try:
        assert await store.erased_among([REFERENCE]) == {REFERENCE}
        assert await store.find(REFERRAL) == []
        assert await store.database.run(lambda c: c.execute(select(old_erasures)).all()) == []
    finally:
        await store.close()


async def test_anonymise_after_retention_only(store: DeliveryStore) -> None:
    """Rows younger than the retention keep their message; older ones lose it (and give up)."""
    await store.enqueue([_item("association_email")], now=0)
    assert await store.anonymise(30 * DAY, now=29 * DAY) == 0
    [row] = await store.find(REFERRAL)
    assert row.payload == PERSONAL

    assert await store.anonymise(30 * DAY, now=31 * DAY) == 1

    [row] = await store.find(REFERRAL)
    assert row.payload is None and row.status == FAILED
    assert await store.due(now=32 * DAY) == []
