"""The outbox's periodic task on a real SQLite store with a fake Kafka sink: idle, it reads
nothing; a message a publication left behind still goes out once it is due."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from rebond_events.outbox import Publisher
from rebond_events.store import Store, migrate
from rebond_events.tables import OUTBOX
from rebond_sql.outbox import Message
from rebond_sql.testing import quiet, statements
from rebond_testing import until_async

from .conftest import FakeSink


@asynccontextmanager
async def periodic(sqlite_url: str, interval_s: float) -> AsyncIterator[tuple[Publisher, FakeSink]]:
    """A publisher on a fresh store, its periodic task running every `interval_s`."""
    migrate(sqlite_url)
    store, sink = Store(sqlite_url), FakeSink()
    publisher = Publisher(store, sink.send, lambda: datetime.now(UTC))
    task = asyncio.create_task(publisher.run_forever(interval_s))
    try:
        yield publisher, sink
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


async def test_the_periodic_task_reads_nothing_while_no_message_waits(sqlite_url: str) -> None:
    """With an empty outbox and a 0.5 s interval, three seconds pass without one SQL statement
    (it used to read the outbox at every interval)."""
    async with periodic(sqlite_url, 0.5):
        with statements() as first:
            assert await until_async(lambda: bool(first), within_s=10), "no first round"
        await quiet()  # its first round is over
        with statements() as sent:
            await asyncio.sleep(3)
    assert sent == []


async def test_a_message_a_failed_publication_left_goes_out_once_due(sqlite_url: str) -> None:
    """Kafka refuses a request's publication: the message waits, wakes the sleeping task, and
    goes out once it has waited the interval (1 s), not at the next idle check a minute on."""
    async with periodic(sqlite_url, 1.0) as (publisher, sink):
        await asyncio.sleep(0.3)  # asleep on an empty outbox
        message = Message(topic="conferences.registrations", key="r1", value=b"{}", subject="r1")
        written = datetime.now(UTC)
        await publisher.store.database.run(lambda c: OUTBOX.add(c, [message], written))
        sink.down = True
        await publisher.flush_quietly(["r1"])
        sink.down = False
        await until_async(lambda: bool(sink.sent), within_s=10)
        published_at = datetime.now(UTC)
    assert [m.subject for m in sink.sent] == ["r1"]
    # Not before its interval; and long before the minute's idle check, with room for a loaded
    # machine (`make test` runs this at nice 19 beside the broker tiers).
    assert written + timedelta(seconds=1) <= published_at < written + timedelta(seconds=5)
