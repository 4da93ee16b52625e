"""The outbox's periodic task on a real SQLite store with a fake Kafka sink: idle, it reads
nothing; a message a publication left behind still goes out once it is due."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from rebond_events.outbox import IDLE_CHECK_S, Publisher
from rebond_events.store import Store, migrate
from rebond_events.tables import OUTBOX
from rebond_sql.outbox import Message
from rebond_sql.testing import statements
from rebond_testing import until_async

from .conftest import FakeSink


class Watched(Publisher):
    """The real publisher, keeping how long each round of its periodic task chose to sleep: a
    round that chose has read all it reads, so a test knows when the task is asleep instead of
    waiting for the SQL to stop for a while."""

    def __init__(self, store: Store, sink: FakeSink) -> None:
        super().__init__(store, sink.send, lambda: datetime.now(UTC))
        self.sleeps: list[float] = []

    async def _until_due(self, older_than: timedelta, idle_s: float) -> float:
        wait_s = await super()._until_due(older_than, idle_s)
        self.sleeps.append(wait_s)
        return wait_s


@asynccontextmanager
async def periodic(sqlite_url: str, interval_s: float) -> AsyncIterator[tuple[Watched, FakeSink]]:
    """A publisher on a fresh store, its periodic task running every `interval_s`."""
    migrate(sqlite_url)
    store, sink = Store(sqlite_url), FakeSink()
    publisher = Watched(store, sink)
    task = asyncio.create_task(publisher.run_forever(interval_s))
    try:
        yield publisher, sink
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


async def test_the_periodic_task_reads_nothing_while_no_message_waits(sqlite_url: str) -> None:
    """With an empty outbox and a 0.1 s interval, the first round goes to sleep for the idle
    check's minute, and six intervals pass without one SQL statement (it used to read the
    outbox at every interval)."""
    async with periodic(sqlite_url, 0.1) as (publisher, _):
        assert await until_async(lambda: publisher.sleeps, within_s=10), "no first round"
        with statements() as sent:
            await asyncio.sleep(0.6)
    assert sent == []
    assert publisher.sleeps == [IDLE_CHECK_S]


async def test_a_message_a_failed_publication_left_goes_out_once_due(sqlite_url: str) -> None:
    """Kafka refuses a request's publication: the message waits, wakes the sleeping task, and
    goes out once it has waited the interval (0.5 s), not at the next idle check a minute on."""
    async with periodic(sqlite_url, 0.5) as (publisher, sink):
        assert await until_async(lambda: publisher.sleeps, within_s=10), "not asleep"
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
    assert written + timedelta(seconds=0.5) <= published_at < written + timedelta(seconds=5)
