"""The delivery log on SQLite and PostgreSQL: idempotent inserts, exclusive claims, answers."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, event

from rebond_contracts.payloads import ReferralStatus
from rebond_notifier import messages
from rebond_notifier.store import (
    AlreadyAnswered,
    Delivery,
    DeliveryStatus,
    DeliveryStore,
    Lease,
    NewDelivery,
    ReferralState,
)
from rebond_sql.outbox import Message

from .conftest import at, sqlite_store

REF = "RB-7K3M-Q9XA-2DFE-W8NB"
MINUTE = timedelta(seconds=60)


def _no_one_to_tell(_holders: object) -> list[Message]:
    """The erasure's withdrawals: none expected here."""
    return []


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


async def _four(store: DeliveryStore, channel: str = "webhook", **fields: str) -> list[Delivery]:
    """Four pending deliveries of one channel recorded at t=1000, in order."""
    kinds = ("offer", "reminder", "expiry", "confirmation")
    await store.enqueue([_item(channel, kind, **fields) for kind in kinds], now=at(1000))
    return [d for d in await store.due(now=at(1000)) if d.channel == channel]


def _ids(items: list[Delivery]) -> list[int]:
    return [d.id for d in items]


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
    await store.enqueue([_item()], now=at(1000))
    [due] = await store.due(now=at(1000))
    assert (await store.claim_many([due.id], MINUTE, now=at(1000))).ids == (due.id,)
    assert (await store.claim_many([due.id], MINUTE, now=at(1001))).ids == ()
    assert await store.due(now=at(1001)) == []
    assert (await store.claim_many([due.id], MINUTE, now=at(1061))).ids == (due.id,)


async def test_a_delivery_keeps_its_id_across_attempts_and_lease_takeovers(
    store: DeliveryStore,
) -> None:
    """The id a receiver deduplicates on: the same for every attempt at one delivery (even by
    another replica after a lease ends), different from the referral's other deliveries."""
    await store.enqueue([_item(), _item("association_email")], now=at(1000))
    first = {d.channel: d.delivery_id for d in await store.due(now=at(1000))}
    webhook = next(d for d in await store.due(now=at(1000)) if d.channel == "webhook")
    assert (await store.claim_many([webhook.id], MINUTE, now=at(1000))).ids == (webhook.id,)
    await store.retry_later(webhook.id, 1, at(1010), "webhook timeout")
    again = {d.channel: d.delivery_id for d in await store.due(now=at(1100))}
    assert again == first
    assert first["webhook"] != first["association_email"]


async def test_final_outcome_erases_the_message_and_awaits_publication(
    store: DeliveryStore,
) -> None:
    """A finished delivery keeps no message text, and its outcome waits in the outbox, written
    with it, under the event id derived from the delivery and its outcome."""
    await store.enqueue([_item()])
    [due] = await store.due()
    await store.finish(due, DeliveryStatus.DEAD_LETTERED, 6, "webhook timeout")
    [row] = await store.find(due.referral_id)
    assert (row.status, row.attempts, row.payload) == ("dead_lettered", 6, None)
    [waiting] = await store.database.run(store.outbox.pending)
    assert waiting.topic == "notifications.deliveries" and waiting.subject == REF
    assert json.loads(waiting.value) | {"at": None} == {
        "reference": REF, "referral_id": due.referral_id, "association_id": "apesa",
        "channel": "webhook", "outcome": "dead_lettered", "attempts": 6, "at": None,
    }  # fmt: skip
    again = messages.outcome(due, DeliveryStatus.DEAD_LETTERED, 6, at(0))
    assert again is not None and waiting.headers["ce_id"] == again.headers["ce_id"]


def _answer(text: str) -> Message:
    return Message(topic="responses.apesa", key=REF, value=text.encode(), subject=REF)


async def test_an_answer_is_recorded_once_with_its_message(store: DeliveryStore) -> None:
    """The answer and its message for Kafka are written together or not at all (a message
    that cannot be written leaves the link usable); a second answer is refused and writes
    nothing more."""
    broken = Message(topic="responses.apesa", key=None, value=b"accept", subject=REF)  # type: ignore[arg-type]
    with pytest.raises(Exception, match=r"(?i)null"):
        await store.record_answer("r1", "apesa", "accept", None, broken, reference=REF)
    assert not await store.answered("r1")
    await store.record_answer("r1", "apesa", "accept", None, _answer("yes"), reference=REF)
    assert await store.answered("r1")
    with pytest.raises(AlreadyAnswered):
        await store.record_answer("r1", "apesa", "decline", "other", _answer("no"),
                                  reference=REF)  # fmt: skip
    assert [m.value for m in await store.database.run(store.outbox.pending)] == [b"yes"]


async def test_claiming_many_takes_in_one_go_only_what_no_other_lease_holds(
    store: DeliveryStore,
) -> None:
    """Of the deliveries asked for, those another worker holds, those put off to later and
    those already final are left; the rest are taken, and not again until their lease ends."""
    free, other, later, done = await _four(store)
    assert (await store.claim_many([other.id], MINUTE, now=at(1000))).ids == (other.id,)
    await store.retry_later(later.id, 1, at(2000), "smtp 451")
    await store.finish(done, DeliveryStatus.SENT, 1)

    lease = await store.claim_many(_ids([free, other, later, done]), MINUTE, now=at(1001))

    assert lease == Lease((free.id,), at(1061))
    assert (await store.claim_many([free.id, other.id], MINUTE, now=at(1002))).ids == ()
    assert (await store.claim_many([free.id, other.id], MINUTE, now=at(1062))).ids == (
        free.id, other.id,
    )  # fmt: skip


async def test_a_held_chunk_shows_what_an_erasure_stopped_and_can_be_handed_back(
    store: DeliveryStore,
) -> None:
    """A worker's check on its claimed chunk (alone or in the record of the previous delivery)
    drops what an erasure stopped; handing back frees only rows still under that same lease."""
    kept = await _four(store)
    erased = await _four(store, "association_email", reference="RB-0000-0000-0000-0001")
    lease = await store.claim_many(_ids(kept[:2] + erased[:2]), MINUTE, now=at(1000))
    assert lease.ids == tuple(_ids(kept[:2] + erased[:2]))

    await store.erase("RB-0000-0000-0000-0001", _no_one_to_tell, now=at(1001))

    assert await store.held(lease) == _ids(kept[:2])
    after_first = lease.after(kept[0].id)
    assert await store.finish(kept[0], DeliveryStatus.SENT, 1, then_check=after_first) == [
        kept[1].id
    ]
    await store.release(lease)
    assert (await store.claim_many(_ids(kept), MINUTE, now=at(1002))).ids == tuple(_ids(kept[1:]))
    await store.release(lease)  # a stale lease: the rows are another claim's now
    assert await store.held(Lease(tuple(_ids(kept[1:])), at(1062))) == _ids(kept[1:])


async def test_due_leaves_out_the_lanes_already_being_drained(store: DeliveryStore) -> None:
    """The dispatcher does not read again the rows of lanes it is draining."""
    await store.enqueue(
        [_item(), _item("association_email"), _item("webhook", "reminder", association="re-creer")],
        now=at(1000),
    )
    lanes = [d.lane for d in await store.due(now=at(1000), except_lanes=[("webhook", "apesa")])]
    assert lanes == [("association_email", "apesa"), ("webhook", "re-creer")]


async def test_each_round_finds_its_due_rows_through_an_index(tmp_path: Path) -> None:
    """SQLite: the query of every dispatch round (due deliveries) uses the index the migrations
    make (on an older log too: `test_migrations`) instead of scanning every delivery ever
    sent."""
    store = await sqlite_store(tmp_path)
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
        await store.next_due()  # what an idle dispatcher asks before sleeping
        plans = await store.database.run(explain)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
        await store.close()
    assert len(plans) == 2
    assert all("ix_notifier_deliveries_due" in plan for plan in plans), plans


async def test_the_next_due_time_is_the_earliest_attempt_or_end_of_a_lease(
    store: DeliveryStore,
) -> None:
    """What an idle dispatcher sleeps until: the earliest next attempt of a free pending
    delivery or end of a lease holding one, outside the lanes it drains; None once all are
    final."""
    free, other, later, done = await _four(store)
    await store.finish(done, DeliveryStatus.SENT, 1)
    await store.retry_later(later.id, 1, at(2000), "smtp 451")
    assert await store.next_due(now=at(1001)) == at(1000)
    await store.claim_many([free.id, other.id], MINUTE, now=at(1001))
    assert await store.next_due(now=at(1002)) == at(1061)
    assert await store.next_due(now=at(1002), except_lanes=[("webhook", "apesa")]) is None
    for delivery in (free, other, later):
        await store.finish(delivery, DeliveryStatus.SENT, 1)
    assert await store.next_due(now=at(1002)) is None


REFERRAL = "da6e70fb-f7ab-5902-904a-60821a89176b"


def _state(status: str, seconds: float, referral: str = REFERRAL) -> ReferralState:
    return ReferralState(referral, ReferralStatus(status), at(seconds))


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
    await store.anonymise(timedelta(days=30), now=at(31 * day))
    assert await store.referral_state(REFERRAL) is None
    assert await store.referral_state(recent) is not None
