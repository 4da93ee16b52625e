"""The reconnect pacing of aiokafka's clients, on the real broker: a client whose broker went
away tries once per (growing) delay instead of once per loop turn, notices the broker's return
within one delay even when idle, is not an outage while another client still reaches the
cluster, and is not held up by its delays when it stops.

The broker "goes away" for one client only (`rebond_kafka.testing.BrokerAway`: its metadata
points at a closed port and its connections break, as a SIGKILLed broker breaks them), so the
session broker stays up for the other tests; `tests/faults/test_broker_kill.py` kills a real one.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaClient, AIOKafkaConsumer

from rebond_contracts.topics import QUESTIONNAIRES
from rebond_kafka.backoff import Backoff
from rebond_kafka.outage import Impact, KafkaLink
from rebond_kafka.reconnect import _STATE, RECONNECT, kafka_link
from rebond_kafka.testing import BrokerAway, kafka_away

pytestmark = pytest.mark.kafka

IMPACT = Impact(fr="essai", en="test")


def localhost(bootstrap: str) -> str:
    """The same broker under another name: these tests' link is not the other tests' one."""
    return "localhost:" + bootstrap.rsplit(":", 1)[1]


class Attempts(logging.Handler):
    """Counts aiokafka's failed connection attempts (it logs each one)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Unable connect to node with id %s: %s":
            self.count += 1


@pytest.fixture
def attempts() -> Iterator[Attempts]:
    handler, library = Attempts(), logging.getLogger("aiokafka")
    library.addHandler(handler)
    try:
        yield handler
    finally:
        library.removeHandler(handler)


#: The longest delay `paced` gives, and how long the client may take after it to be connected
#: again: its connection's own set-up, on a loaded machine (`make test` runs this beside
#: `make check`'s tests). 0.1 s was once 0.8 ms short.
LONGEST_DELAY_S = 0.4
BACK_WITHIN_S = LONGEST_DELAY_S + 0.3


@pytest.fixture
def paced() -> Iterator[None]:
    """Short, exact delays: 0.1 s, 0.2 s, then 0.4 s."""
    kafka_link("127.0.0.1:1", IMPACT)  # installs the patch
    default = RECONNECT.backoff
    RECONNECT.backoff = lambda: Backoff(first_s=0.1, cap_s=LONGEST_DELAY_S, jitter=0)
    try:
        yield
    finally:
        RECONNECT.backoff = default


async def connected_client(bootstrap: str) -> tuple[AIOKafkaClient, KafkaLink, int]:
    client = AIOKafkaClient(bootstrap_servers=localhost(bootstrap))
    await client.bootstrap()
    node = client.get_random_node()
    assert await client.ready(node)
    return client, kafka_link(localhost(bootstrap), IMPACT), node


async def until(check: object, within_s: float) -> float:
    """Seconds until `check()` holds (fails the test after `within_s`)."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < within_s, f"not within {within_s} s"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_a_client_whose_broker_went_away_tries_once_per_delay(
    kafka_bootstrap: str, paced: None, attempts: Attempts
) -> None:
    """Ten loops asking for the broker every 100 ms (as aiokafka's fetcher, coordinator,
    heartbeat... do) make one connection attempt per delay (0.1, 0.2, 0.4, 0.4 s...), not 200
    in 2 s; the link goes down once, and is up again within one delay of the broker's return."""
    client, link, node = await connected_client(kafka_bootstrap)
    outages = link.outages
    away = BrokerAway(client)
    stop = asyncio.Event()

    async def ask() -> None:
        while not stop.is_set():
            await client.ready(node)
            await asyncio.sleep(0.1)

    try:
        away.go()
        loops = [asyncio.create_task(ask()) for _ in range(10)]
        await asyncio.sleep(2.0)
        tried, down = attempts.count, link.down
        away.back()
        back_after = await until(lambda: not link.down, within_s=2.0)
        stop.set()
        await asyncio.gather(*loops)
    finally:
        await client.close()
    assert 5 <= tried <= 8, f"{tried} connection attempts in 2 s"  # at 0, .1, .3, .7, 1.1, 1.5, 1.9
    assert down and link.outages == outages + 1
    assert back_after <= BACK_WITHIN_S


async def test_an_idle_client_notices_the_broker_back_within_one_delay(
    kafka_bootstrap: str, paced: None
) -> None:
    """Nobody asks anything of the client (a producer with nothing to send): it still tries
    again at the end of each delay, so its link comes back up without waiting for a request."""
    client, link, _ = await connected_client(kafka_bootstrap)
    away = BrokerAway(client)
    try:
        away.go()
        await until(lambda: link.down, within_s=2.0)
        await asyncio.sleep(1.0)
        away.back()
        back_after = await until(lambda: not link.down, within_s=2.0)
    finally:
        await client.close()
    assert back_after <= BACK_WITHIN_S


async def test_another_client_still_reaching_the_cluster_means_no_outage(
    kafka_bootstrap: str, paced: None
) -> None:
    """One client failing to connect while another keeps a live connection (one broker of
    three restarting) is not an outage; once no client reaches any broker, it is."""
    first, link, node = await connected_client(kafka_bootstrap)
    second, _, _ = await connected_client(kafka_bootstrap)
    try:
        BrokerAway(first).go()
        for _ in range(5):
            await first.ready(node)
            await asyncio.sleep(0.1)
        partial = link.down
        BrokerAway(second).go()
        await until(lambda: link.down, within_s=2.0)
    finally:
        await first.close()
        await second.close()
    assert not partial


async def test_a_consumer_stopped_during_an_outage_is_not_held_by_its_delays(
    kafka_bootstrap: str,
) -> None:
    """With 3 s delays, a consumer whose broker is gone stops at once: its last requests
    (leaving the group) fail at once, as they did before the pacing, instead of waiting."""
    kafka_link(localhost(kafka_bootstrap), IMPACT)
    default = RECONNECT.backoff
    RECONNECT.backoff = lambda: Backoff(first_s=3.0, cap_s=3.0, jitter=0)
    consumer = AIOKafkaConsumer(
        QUESTIONNAIRES.name, bootstrap_servers=localhost(kafka_bootstrap),
        group_id=f"lib-kafka-reconnect-{uuid.uuid4().hex[:8]}", heartbeat_interval_ms=200,
    )  # fmt: skip
    try:
        await consumer.start()
        await until(lambda: bool(consumer.assignment()), within_s=30)
        client = consumer._client
        BrokerAway(client).go()
        await until(lambda: bool(getattr(client.__dict__.get(_STATE), "gates", None)), 5.0)
        await asyncio.sleep(0.5)  # the heartbeat and the fetcher now wait at the gate
        started = time.monotonic()
        await consumer.stop()
        stopped_in = time.monotonic() - started
    finally:
        RECONNECT.backoff = default
        await consumer.stop()
    assert stopped_in < 1.5, f"stop took {stopped_in:.1f} s"


async def test_a_client_asking_for_a_broker_first_while_away_finds_it_gone(
    kafka_bootstrap: str, paced: None
) -> None:
    """A client that had bootstrapped but asked for no broker yet when Kafka went away (a
    consumer just started: not paced yet, so not among those `kafka_away` found) finds it gone
    from its first request on, and reaches it once it is back."""
    first, _, node = await connected_client(kafka_bootstrap)
    late = AIOKafkaClient(bootstrap_servers=localhost(kafka_bootstrap))
    await late.bootstrap()  # metadata through its own connection; not paced yet
    try:
        with kafka_away(localhost(kafka_bootstrap)):
            reached_while_away = await late.ready(node)
        deadline = time.monotonic() + 5
        while not await late.ready(node):
            assert time.monotonic() < deadline, "not back within 5 s"
            await asyncio.sleep(0.05)
    finally:
        await late.close()
        await first.close()
    assert not reached_while_away
