"""The outbox: messages written with a state change go out only if it commits, in order, each
deleted once acknowledged; a failure keeps what did not go out for the next flush. On SQLite and
PostgreSQL."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, MetaData

from rebond_sql import Database
from rebond_sql.erasure import lock_references
from rebond_sql.outbox import Message, Outbox, Relay, outbox_table
from rebond_sql.testing import held_up, tables_of

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
metadata = MetaData()
OUTBOX = Outbox(outbox_table(metadata, "test_outbox"))


@pytest.fixture
async def database(sql_url: str) -> AsyncIterator[Database]:
    async with tables_of(sql_url, metadata, "outbox") as database:
        yield database


def message(n: int, subject: str = "RB-A") -> Message:
    return Message(
        topic="t", key=subject, value=f"v{n}".encode(), headers={"ce_id": str(n)},
        subject=subject,
    )  # fmt: skip


class Producer:
    """A fake producer: records what it was handed, acknowledges unless told to fail some."""

    def __init__(self, failing: frozenset[bytes] = frozenset()) -> None:
        self.handed: list[Message] = []
        self.failing = failing

    async def send(self, message: Message) -> "asyncio.Future[object]":
        self.handed.append(message)
        ack: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if message.value in self.failing:
            ack.set_exception(TimeoutError("no acknowledgement"))
        else:
            ack.set_result(None)
        return ack


async def test_what_a_rolled_back_change_wrote_is_never_published(database: Database) -> None:
    """The messages go with their transaction: rolled back, nothing is pending."""
    with pytest.raises(RuntimeError):
        async with database.transaction() as tx:
            await tx.run(lambda c: OUTBOX.add(c, [message(1)], T0))
            raise RuntimeError("the state change failed")
    producer = Producer()
    assert await Relay(database, OUTBOX, producer.send).flush() == 0
    assert producer.handed == []


async def test_a_flush_publishes_in_order_and_forgets_what_was_acknowledged(
    database: Database,
) -> None:
    """Messages go out in the order they were written, with their headers, then are gone."""
    await database.run(lambda c: OUTBOX.add(c, [message(1), message(2), message(3)], T0))
    producer = Producer()
    relay = Relay(database, OUTBOX, producer.send)
    assert await relay.flush() == 3
    assert [m.value for m in producer.handed] == [b"v1", b"v2", b"v3"]
    assert producer.handed[0].headers == {"ce_id": "1"} and producer.handed[0].key == "RB-A"
    assert await relay.flush() == 0 and len(producer.handed) == 3


async def test_a_message_kafka_did_not_acknowledge_goes_with_the_next_flush(
    database: Database,
) -> None:
    """The failure is raised; what was acknowledged is gone, the rest is published next time."""
    await database.run(lambda c: OUTBOX.add(c, [message(1), message(2)], T0))
    relay = Relay(database, OUTBOX, Producer(failing=frozenset({b"v2"})).send)
    with pytest.raises(TimeoutError):
        await relay.flush()
    again = Producer()
    assert await Relay(database, OUTBOX, again.send).flush() == 1
    assert [m.value for m in again.handed] == [b"v2"]


async def test_a_flush_can_keep_to_some_subjects_or_to_old_messages(database: Database) -> None:
    """`subjects` publishes only theirs; `older_than` only what waited that long."""
    await database.run(lambda c: OUTBOX.add(c, [message(1, "RB-A")], T0))
    await database.run(lambda c: OUTBOX.add(c, [message(2, "RB-B")], T0 + timedelta(minutes=5)))
    producer = Producer()
    relay = Relay(database, OUTBOX, producer.send, clock=lambda: T0 + timedelta(minutes=6))
    assert await relay.flush(older_than=timedelta(minutes=3)) == 1
    assert [m.subject for m in producer.handed] == ["RB-A"]
    assert await relay.flush(subjects=["RB-C"]) == 0
    assert await relay.flush(subjects=["RB-B"]) == 1


async def test_concurrent_flushes_publish_each_message_once(database: Database) -> None:
    """Two flushes started together (a handler and the periodic task) hand each message over
    once."""
    await database.run(lambda c: OUTBOX.add(c, [message(n) for n in range(20)], T0))
    producer = Producer()
    relay = Relay(database, OUTBOX, producer.send)
    counts = await asyncio.gather(relay.flush(), relay.flush())
    assert sorted(counts) == [0, 20] and len(producer.handed) == 20


async def test_a_large_outbox_is_published_in_batches_to_the_end(database: Database) -> None:
    """More pending messages than one batch: every one goes out, in order."""
    await database.run(lambda c: OUTBOX.add(c, [message(n) for n in range(25)], T0))
    producer = Producer()
    assert await Relay(database, OUTBOX, producer.send, batch=10).flush() == 25
    assert [m.value for m in producer.handed] == [f"v{n}".encode() for n in range(25)]


async def test_an_erased_subjects_unsent_messages_are_dropped(database: Database) -> None:
    """`forget_subject` drops every unsent message about one subject, and only those."""
    await database.run(lambda c: OUTBOX.add(c, [message(1, "RB-A"), message(2, "RB-B")], T0))
    await database.run(lambda c: OUTBOX.forget_subject(c, "RB-A"))
    producer = Producer()
    await Relay(database, OUTBOX, producer.send).flush()
    assert [m.subject for m in producer.handed] == ["RB-B"]


async def test_an_id_is_never_given_twice(database: Database) -> None:
    """A message written after the newest one was dropped gets an id of its own (SQLite reuses
    a deleted rowid unless told not to), so forgetting the dropped one cannot forget it."""
    await database.run(lambda c: OUTBOX.add(c, [message(1)], T0))
    [first] = await database.run(OUTBOX.pending)
    await database.run(lambda c: OUTBOX.forget_subject(c, "RB-A"))
    await database.run(lambda c: OUTBOX.add(c, [message(2)], T0))
    [second] = await database.run(OUTBOX.pending)
    assert second.id != first.id


class HeldProducer(Producer):
    """Acknowledges nothing until `release` is set; `handed_over` tells when it was given one."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.handed_over = asyncio.Event()

    async def send(self, message: Message) -> "asyncio.Future[object]":
        self.handed.append(message)
        self.handed_over.set()
        return asyncio.ensure_future(self.release.wait())


async def test_a_locked_flush_holds_its_subjects_until_kafka_acknowledged(
    database: Database,
) -> None:
    """With a `lock`, a change that takes the subject's lock exclusively (an erasure replacing
    the unsent offer with a withdrawal) waits for the offer's acknowledgement on PostgreSQL,
    and on either database the withdrawal goes out after the offer, never before it."""
    dialect = database.dialect

    def lock(connection: Connection, subjects: Sequence[str]) -> None:
        lock_references(connection, subjects, erasing=False)

    def erase(connection: Connection) -> None:
        lock_references(connection, ["RB-A"], erasing=True)
        OUTBOX.forget_subject(connection, "RB-A")
        OUTBOX.add(connection, [message(2)], T0)

    await database.run(lambda c: OUTBOX.add(c, [message(1)], T0))
    producer = HeldProducer()
    relay = Relay(database, OUTBOX, producer.send, lock=lock)
    offering = asyncio.create_task(relay.flush(subjects=["RB-A"]))
    await asyncio.wait_for(producer.handed_over.wait(), 10)
    erasing = asyncio.create_task(database.run(erase))
    held = await held_up(database, erasing)  # on SQLite, half a second to go ahead, or not
    if dialect == "postgresql":
        assert held, "the erasure went ahead while the offer waited for its acknowledgement"
    producer.release.set()
    assert await asyncio.wait_for(offering, 10) == 1
    await asyncio.wait_for(erasing, 10)
    assert await relay.flush() == 1
    assert [m.value for m in producer.handed] == [b"v1", b"v2"]
