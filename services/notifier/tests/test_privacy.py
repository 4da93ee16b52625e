"""Erasure and anonymisation of the delivery log (SQLite and PostgreSQL, controlled clock)."""

from collections.abc import AsyncIterator

import pytest

from rebond_notifier.store import ERASED, FAILED, SENT, DeliveryStore, Holder, NewDelivery

REFERENCE = "RB-7K3M-Q9XA-2DFE-W8NB"
REFERRAL = "da6e70fb-f7ab-5902-904a-60821a89176b"
PERSONAL = {"to": "claire.martin@example.org", "body": "Claire Martin, 06 12 34 56 78"}
DAY = 86400.0


@pytest.fixture
async def store(sql_url: str) -> AsyncIterator[DeliveryStore]:
    store = DeliveryStore.from_url(sql_url)
    await store.create_schema()
    yield store
    await store.close()


def _item(channel: str, kind: str = "offer", association: str = "apesa") -> NewDelivery:
    return NewDelivery(
        referral_id=REFERRAL, channel=channel, kind=kind, reference=REFERENCE,
        association_id=association, correlation_id=REFERENCE, payload=PERSONAL,
    )  # fmt: skip


async def test_erasure_stops_pending_deliveries_and_erases_personal_fields(
    store: DeliveryStore,
) -> None:
    """Erased: nothing left to send, no message text, holders returned, the reference remembered."""
    await store.enqueue([_item("association_email"), _item("person_email")], now=0)
    [first, _] = await store.find(REFERRAL)
    await store.finish(first.id, SENT, 1)
    await store.retry_later(first.id + 1, 1, 5, "smtp said no to claire.martin@example.org")

    holders = await store.erase(REFERENCE, now=10)

    assert holders == [Holder("apesa", REFERRAL)]
    rows = await store.find(REFERRAL)
    assert [r.status for r in rows] == [SENT, ERASED]
    assert all(r.payload is None and r.last_error is None for r in rows)
    assert await store.due(now=100) == []
    assert await store.erased_among([REFERENCE, "RB-0000-0000-0000-0000"]) == {REFERENCE}
    assert await store.erase(REFERENCE, now=11) == holders  # a redelivery is harmless


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
