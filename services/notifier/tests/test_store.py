"""The delivery log on SQLite and PostgreSQL: idempotent inserts, exclusive claims, answers."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, event

from rebond_notifier.store import (
    AlreadyAnswered,
    DeliveryStore,
    Lease,
    NewDelivery,
    ReferralState,
)

REF = "RB-7K3M-Q9XA-2DFE-W8NB"


async def _no_one_to_tell(_holders: object) -> None:
    """The erasure's withdrawals: none expected here."""


@pytest.fixture
async def store(sql_url: str) -> AsyncIterator[DeliveryStore]:
    store = DeliveryStore.from_url(sql_url)
    await store.create_schema()
    yield store
    await store.close()


def _item(
    channel: str = "webhook",
    kind: str = "offer",
    reference: str = "RB-7K3M-Q9XA-2DFE-W8NB",
    association: str = "apesa",
) -> NewDelivery:
    return NewDelivery(
        referral_id="da6e70fb-f7ab-5902-904a-60821a89176b",
        channel=channel,
        kind=kind,
        reference=reference,
        association_id=association,
        correlation_id=reference,
        payload={"body": "{}"},
    )


async def _four_ids(store: DeliveryStore, channel: str = "webhook", **fields: str) -> list[int]:
    """Four pending deliveries of one channel recorded at t=1000; their ids in order."""
    kinds = ("offer", "reminder", "expiry", "confirmation")
    await store.enqueue([_item(channel, kind, **fields) for kind in kinds], now=1000.0)
    return [d.id for d in await store.due(now=1000.0) if d.channel == channel]


async def test_recording_twice_keeps_one_delivery(store: DeliveryStore) -> None:
    """The same (referral, channel, kind) recorded twice is one row: nothing is sent twice."""
    assert await store.enqueue([_item(), _item("association_email")]) == 2
    assert await store.enqueue([_item(), _item("association_email")]) == 0
    assert await store.enqueue([_item("association_email", "reminder")]) == 1
    assert len(await store.find("da6e70fb-f7ab-5902-904a-60821a89176b")) == 3


async def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_ends(
    store: DeliveryStore,
) -> None:
    """Only one worker holds a delivery; after the lease another may take it over."""
    await store.enqueue([_item()], now=1000.0)
    [due] = await store.due(now=1000.0)
    assert (await store.claim_many([due.id], lease_s=60, now=1000.0)).ids == (due.id,)
    assert (await store.claim_many([due.id], lease_s=60, now=1001.0)).ids == ()
    assert await store.due(now=1001.0) == []
    assert (await store.claim_many([due.id], lease_s=60, now=1061.0)).ids == (due.id,)


async def test_a_delivery_keeps_its_id_across_attempts_and_lease_takeovers(
    store: DeliveryStore,
) -> None:
    """The id a receiver deduplicates on: the same for every attempt at one delivery (even by
    another replica after a lease ends), different from the referral's other deliveries."""
    await store.enqueue([_item(), _item("association_email")], now=1000.0)
    first = {d.channel: d.delivery_id for d in await store.due(now=1000.0)}
    webhook = next(d for d in await store.due(now=1000.0) if d.channel == "webhook")
    assert (await store.claim_many([webhook.id], lease_s=60, now=1000.0)).ids == (webhook.id,)
    await store.retry_later(webhook.id, 1, 1010.0, "webhook timeout")
    again = {d.channel: d.delivery_id for d in await store.due(now=1100.0)}
    assert again == first
    assert first["webhook"] != first["association_email"]


async def test_final_outcome_erases_the_message_and_awaits_publication(
    store: DeliveryStore,
) -> None:
    """A finished delivery keeps no message text and is listed until its outcome is published."""
    await store.enqueue([_item()])
    [due] = await store.due()
    await store.finish(due.id, "dead_lettered", 6, "webhook timeout")
    [row] = await store.unpublished_outcomes()
    assert (row.status, row.attempts, row.payload) == ("dead_lettered", 6, None)
    await store.mark_published([row.id])
    assert await store.unpublished_outcomes() == []


async def test_an_answer_is_recorded_once_and_only_when_published(store: DeliveryStore) -> None:
    """A failed publication leaves the link usable; after a success a second answer is refused."""
    published: list[str] = []

    async def fail() -> None:
        raise ConnectionError("kafka down")

    async def ok() -> None:
        published.append("yes")

    with pytest.raises(ConnectionError):
        await store.record_answer("r1", "apesa", "accept", None, fail, reference=REF)
    assert not await store.answered("r1")
    await store.record_answer("r1", "apesa", "accept", None, ok, reference=REF)
    assert await store.answered("r1")
    with pytest.raises(AlreadyAnswered):
        await store.record_answer("r1", "apesa", "decline", "other", ok, reference=REF)
    assert published == ["yes"]


async def test_claiming_many_takes_in_one_go_only_what_no_other_lease_holds(
    store: DeliveryStore,
) -> None:
    """Of the deliveries asked for, those another worker holds, those put off to later and
    those already final are left; the rest are taken, and not again until their lease ends."""
    free, other, later, done = await _four_ids(store)
    assert (await store.claim_many([other], lease_s=60, now=1000.0)).ids == (other,)
    await store.retry_later(later, 1, 2000.0, "smtp 451")
    await store.finish(done, "sent", 1)

    lease = await store.claim_many([free, other, later, done], lease_s=60, now=1001.0)

    assert lease == Lease((free,), 1061.0)
    assert (await store.claim_many([free, other], lease_s=60, now=1002.0)).ids == ()
    assert (await store.claim_many([free, other], lease_s=60, now=1062.0)).ids == (free, other)


async def test_a_held_chunk_shows_what_an_erasure_stopped_and_can_be_handed_back(
    store: DeliveryStore,
) -> None:
    """A worker's check on its claimed chunk (alone or in the record of the previous delivery)
    drops what an erasure stopped; handing back frees only rows still under that same lease."""
    kept = await _four_ids(store)
    erased = await _four_ids(store, "association_email", reference="RB-0000-0000-0000-0001")
    lease = await store.claim_many(kept[:2] + erased[:2], lease_s=60, now=1000.0)
    assert lease.ids == (*kept[:2], *erased[:2])

    await store.erase("RB-0000-0000-0000-0001", _no_one_to_tell, now=1001.0)

    assert await store.held(lease) == kept[:2]
    assert await store.finish(kept[0], "sent", 1, then_check=lease.after(kept[0])) == kept[1:2]
    await store.release(lease)
    assert (await store.claim_many(kept, lease_s=60, now=1002.0)).ids == tuple(kept[1:])
    await store.release(lease)  # a stale lease: the rows are another claim's now
    assert await store.held(Lease(tuple(kept[1:]), 1062.0)) == kept[1:]


async def test_due_leaves_out_the_lanes_already_being_drained(store: DeliveryStore) -> None:
    """The dispatcher does not read again the rows of lanes it is draining."""
    await store.enqueue(
        [_item(), _item("association_email"), _item("webhook", "reminder", association="re-creer")],
        now=1000.0,
    )
    lanes = [d.lane for d in await store.due(now=1000.0, except_lanes=[("webhook", "apesa")])]
    assert lanes == [("association_email", "apesa"), ("webhook", "re-creer")]


async def test_each_round_finds_its_rows_through_an_index_also_on_an_older_log(
    tmp_path: Path,
) -> None:
    """SQLite: a log created before the indexes gets them from `create_schema`, and the two
    queries of every dispatch round (due deliveries, unpublished outcomes) use them instead of
    scanning every delivery ever sent."""
    store = DeliveryStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'log.sqlite3'}")
    await store.create_schema()

    def drop_indexes(connection: Connection) -> None:  # as an older notifier left it
        for name in ("ix_notifier_deliveries_due", "ix_notifier_deliveries_unpublished"):
            connection.exec_driver_sql(f"DROP INDEX {name}")

    await store.database.run(drop_indexes)
    await store.create_schema()
    statements: list[tuple[str, object]] = []

    def keep(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("SELECT"):
            statements.append((statement, parameters))

    def explain(connection: Connection) -> list[str]:
        return [
            " ".join(
                str(row[-1])
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            )
            for sql, params in statements
        ]

    engine = await store.database.run(lambda connection: connection.engine)  # the SQLite one
    event.listen(engine, "before_cursor_execute", keep)
    try:
        await store.due(except_lanes=[("webhook", "apesa")])
        await store.unpublished_outcomes()
        plans = await store.database.run(explain)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
        await store.close()
    assert len(plans) == 2
    assert "ix_notifier_deliveries_due" in plans[0], plans[0]
    assert "ix_notifier_deliveries_unpublished" in plans[1], plans[1]


REFERRAL = "da6e70fb-f7ab-5902-904a-60821a89176b"


def _state(status: str, at: float, referral: str = REFERRAL) -> ReferralState:
    return ReferralState(referral, status, at)


async def test_a_referral_state_never_goes_back_to_an_earlier_status(store: DeliveryStore) -> None:
    """The latest status is kept; a redelivered earlier one (offered after expired) changes
    nothing, also when both come in one batch; another referral keeps its own."""
    assert await store.referral_state(REFERRAL) is None
    await store.enqueue([], states=[_state("offered", 1.0), _state("reminded", 2.0)])
    assert await store.referral_state(REFERRAL) == _state("reminded", 2.0)
    await store.enqueue([], states=[_state("expired", 3.0), _state("offered", 1.0)])
    assert await store.referral_state(REFERRAL) == _state("expired", 3.0)
    await store.enqueue([], states=[_state("offered", 1.0)])  # redelivered
    assert await store.referral_state(REFERRAL) == _state("expired", 3.0)
    other = "0b5f2d7e-3c1a-4e8b-9f6d-2a7c4e1b8d35"
    await store.enqueue(
        [_item()], states=[_state("reoriented", 4.0), _state("offered", 4.0, other)]
    )
    assert await store.referral_state(REFERRAL) == _state("reoriented", 4.0)
    assert await store.referral_state(other) == _state("offered", 4.0, other)
    assert len(await store.find(REFERRAL)) == 1  # the delivery recorded in the same call


async def test_referral_states_are_forgotten_after_the_retention(store: DeliveryStore) -> None:
    """`anonymise` forgets states unchanged for the retention period, and only those."""
    day = 86_400.0
    recent = "0b5f2d7e-3c1a-4e8b-9f6d-2a7c4e1b8d35"
    await store.enqueue([], states=[_state("offered", 0.0), _state("offered", 29 * day, recent)])
    await store.anonymise(30 * day, now=31 * day)
    assert await store.referral_state(REFERRAL) is None
    assert await store.referral_state(recent) is not None
