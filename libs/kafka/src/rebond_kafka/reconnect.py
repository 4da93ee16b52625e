"""Every aiokafka client reconnects with a growing, capped, jittered delay (`install()`).

What aiokafka 0.14 does, read in its source (`client.py`, `consumer/fetcher.py`,
`consumer/group_coordinator.py`, `producer/sender.py`): it has no reconnect backoff at all.
`reconnect_backoff_ms` and `reconnect_backoff_max_ms` are kafka-python's and Java's settings;
aiokafka accepts neither. `AIOKafkaClient._get_conn` tries to connect each time it is asked,
and a refused connection fails at once on a local network. Every loop that needs a broker
(the fetcher, the group coordinator's lookup, the heartbeat, the sender, the metadata
synchroniser) then logs its failure and sleeps `retry_backoff_ms`, which is fixed (100 ms by
default, never growing); and each failed connection also wakes the metadata synchroniser at once
(`force_metadata_update`), which tries again and logs "Unable to update metadata". In one
service with a dozen consumers that is some 400 connection attempts and 900 `error` lines a
second, and the CPU they cost, for as long as the broker is away. Raising `retry_backoff_ms`
would slow every ordinary retry too (a leader moving) and still never grow. FastStream adds
nothing here: its consume loop sleeps a fixed 5 s after an error `getmany` raises, which a
broker outage does not cause (the fetcher keeps its errors to itself).

So this module patches aiokafka's classes, once per process:

- `AIOKafkaClient._get_conn`: a connection to a node is made by one caller at a time through
  the node's *gate*; callers that come meanwhile share its outcome instead of each trying too.
  After a failure, until the gate's delay (`Backoff`: 0.25 s, doubling up to 5 s, ±20 %) is
  over, callers wait instead of failing and looping. A node whose connection is up goes straight
  to aiokafka: the patch costs a dictionary look-up there. After each failure the client's
  metadata is refreshed at the end of the delay, so that a client with nothing to send (an idle
  producer) still finds out, within the delay, that the broker is back.
- `AIOKafkaConsumer.stop` and `AIOKafkaProducer.stop`: a closing client stops waiting at the
  gates of the nodes it failed to reach (its last requests to them fail at once, as they did
  before), so a service stopped during an outage is not held up by the delays; a node it never
  failed to reach it may still connect to, to flush what it holds.

The failures and successes are told to the `KafkaLink` of the client's bootstrap servers
(`rebond_kafka.outage.LINKS`): a failure only when no client of the process holds a live
connection to any broker of that cluster (one broker of three restarting is not an outage);
a success after an outage ends it, and every gate of that cluster opens at once.
"""

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.client import AIOKafkaClient, ConnectionGroup

from rebond_kafka.backoff import Backoff
from rebond_kafka.outage import LINKS, Impact, KafkaLink, KafkaLinks, bootstrap_key

_STATE = "_rebond_reconnect"
Connect = Callable[[], Awaitable[Any]]


class _Gate:
    """One node of one client whose last connection failed: when it may be tried again."""

    def __init__(self, client: "_Client", node_id: Any, backoff: Backoff) -> None:
        self.client = client
        self.node_id = node_id
        self.backoff = backoff
        self.not_before = 0.0
        self.failures = 0
        self.open = False  # the node was reached: the gate is gone, its waiters go on
        self._woken = asyncio.Event()
        self._trying: asyncio.Future[bool] | None = None

    def failed(self, now: float) -> float:
        """Start the next delay; waiters woken before it keep waiting for it."""
        delay = self.backoff.next_delay()
        self.failures += 1
        self.not_before = now + delay
        if self._woken.is_set():
            self._woken = asyncio.Event()
        return delay

    def wake(self, *, opened: bool = False) -> None:
        """Let waiters try now (the cluster is back, or their client is closing)."""
        self.open = self.open or opened
        self.not_before = 0.0
        self._woken.set()

    async def pass_(self, connect: Connect) -> Any:
        """`connect()` once the delay is over; None (aiokafka's "not ready") if the one try
        made meanwhile by another caller failed, or if the client is closing and this node
        failed (a closing client still makes a first connection, to flush what it holds)."""
        loop = asyncio.get_running_loop()
        while True:
            if self.open:
                return await connect()
            if self.client.closing and self.failures:
                return None
            if self._trying is not None:
                if not await asyncio.shield(self._trying):
                    return None
                continue  # it succeeded: the gate is open
            wait = self.not_before - loop.time()
            if wait <= 0:
                break
            try:
                async with asyncio.timeout(wait):
                    await self._woken.wait()
            except TimeoutError:
                pass
        trying = self._trying = loop.create_future()
        try:
            conn = await connect()
        except BaseException:
            trying.set_result(False)  # a cancelled try says nothing about the broker
            raise
        finally:
            self._trying = None
        trying.set_result(conn is not None)
        if conn is None:
            self.client.failed(self.node_id)
        else:
            self.client.reached(self.node_id)
        return conn


class _Client:
    """The gates of one aiokafka client, and its scheduled metadata refresh."""

    def __init__(self, client: AIOKafkaClient, pacer: "Reconnect") -> None:
        self.ref = weakref.ref(client)
        self.loop = asyncio.get_running_loop()
        self.pacer = pacer
        self.key = bootstrap_key(client._bootstrap_servers)
        self.gates: dict[Any, _Gate] = {}
        self.closing = False
        self._refresh: asyncio.TimerHandle | None = None

    def gate(self, node_id: Any) -> _Gate:
        """A gate for a connection about to be made: open, but the callers that come while
        it is tried wait for its outcome instead of each trying too."""
        gate = self.gates[node_id] = _Gate(self, node_id, self.pacer.backoff())
        return gate

    def failed(self, node_id: Any) -> None:
        gate = self.gates.get(node_id) or self.gate(node_id)
        loop = asyncio.get_running_loop()
        delay = gate.failed(loop.time())
        if self._refresh is None:
            self._refresh = loop.call_later(delay, self._refresh_metadata)
        self.pacer.unreachable(self.key, delay)

    def reached(self, node_id: Any) -> None:
        gate = self.gates.pop(node_id, None)
        if gate is not None:
            gate.wake(opened=True)
        self.pacer.reachable(self.key)

    def wake(self) -> None:
        """Let every waiter try now; from another thread's loop (two apps of one test
        process), through this client's own loop."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            for gate in list(self.gates.values()):
                gate.wake()
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.wake)

    def close(self) -> None:
        self.closing = True
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        self.wake()

    def live(self) -> bool:
        client = self.ref()
        return client is not None and any(c.connected() for c in list(client._conns.values()))

    def _refresh_metadata(self) -> None:
        """At the end of a delay, have the client's metadata synchroniser try the broker, so
        that a client nobody asks anything of also notices when the broker is back."""
        self._refresh = None
        client = self.ref()
        if client is None or self.closing or not self.gates:
            return
        synchroniser = client._sync_task
        if synchroniser is not None and not synchroniser.done():
            client.force_metadata_update()


class Reconnect:
    """The patch and the state of every client it paces; `backoff` makes each gate's delays."""

    def __init__(self, links: KafkaLinks = LINKS, backoff: Callable[[], Backoff] = Backoff) -> None:
        self.links = links
        self.backoff = backoff
        self._clients: weakref.WeakSet[AIOKafkaClient] = weakref.WeakSet()
        self._installed = False

    def install(self) -> None:
        """Patch aiokafka's classes (once; later calls do nothing)."""
        if self._installed:
            return
        self._installed = True
        get_conn: Callable[..., Awaitable[Any]] = AIOKafkaClient._get_conn
        pacer = self

        @functools.wraps(get_conn)
        async def _get_conn(
            client: AIOKafkaClient,
            node_id: Any,
            *,
            group: ConnectionGroup = ConnectionGroup.DEFAULT,
            no_hint: bool = False,
        ) -> Any:
            live = client._conns.get((node_id, group))
            if live is not None and live.connected():  # the usual case: aiokafka's own path
                return await get_conn(client, node_id, group=group, no_hint=no_hint)
            state = client.__dict__.get(_STATE) or pacer._track(client)
            gate = state.gates.get(node_id) or state.gate(node_id)
            return await gate.pass_(
                functools.partial(get_conn, client, node_id, group=group, no_hint=no_hint)
            )

        AIOKafkaClient._get_conn = _get_conn  # type: ignore[method-assign]
        _stop_waiting_first(AIOKafkaConsumer, lambda consumer: consumer._client)
        _stop_waiting_first(AIOKafkaProducer, lambda producer: producer.client)

    def _track(self, client: AIOKafkaClient) -> _Client:
        state = _Client(client, self)
        client.__dict__[_STATE] = state
        self._clients.add(client)
        return state

    def clients(self, bootstrap_servers: str) -> list[AIOKafkaClient]:
        """The clients of this process paced so far that bootstrap from these servers."""
        key = bootstrap_key(bootstrap_servers)
        return [c for c in list(self._clients) if c.__dict__[_STATE].key == key]

    def _states(self, key: frozenset[str]) -> list[_Client]:
        states = (client.__dict__.get(_STATE) for client in list(self._clients))
        return [state for state in states if state is not None and state.key == key]

    def unreachable(self, key: frozenset[str], retry_in_s: float) -> None:
        link = self.links.find(key)
        if link is None or any(state.live() for state in self._states(key)):
            return  # no service watches this cluster, or another broker of it still answers
        link.unreachable(retry_in_s)

    def reachable(self, key: frozenset[str]) -> None:
        """A client reached the cluster: after an outage, every client of it may try at once
        instead of at the end of its delay."""
        link = self.links.find(key)
        if link is None or not link.down:
            return
        link.reachable()
        for state in self._states(key):
            state.wake()


def _stop_waiting_first(cls: type[Any], client_of: Callable[[Any], AIOKafkaClient]) -> None:
    stop: Callable[[Any], Awaitable[None]] = cls.stop

    @functools.wraps(stop)
    async def _stop(self: Any) -> None:
        state = client_of(self).__dict__.get(_STATE)
        if state is not None:
            state.close()
        await stop(self)

    cls.stop = _stop


#: The process's pacer (process-wide like aiokafka's classes it patches: `rebond_kafka.outage`).
RECONNECT = Reconnect()


def install() -> None:
    """Pace every aiokafka client of this process (idempotent): the `rebond-association`
    client calls it from its entry point; the services through `kafka_link`."""
    RECONNECT.install()


def kafka_link(bootstrap_servers: str, impact: Impact) -> KafkaLink:
    """What a service's composition root calls: its clients paced, and the link its readiness,
    metrics and logs read for these bootstrap servers."""
    install()
    return RECONNECT.links.link(bootstrap_servers, impact)
