"""The service host, with fakes: parts started in order and stopped in reverse, a task that dies
told, restarted and keeping the service unready until it has settled, `after`, the probes, and
freed memory handed back while it serves."""

import asyncio
from collections.abc import Callable

import httpx
import pytest
import structlog
from fastapi import FastAPI
from structlog.testing import capture_logs

from rebond_kafka.outage import Impact, KafkaLink
from rebond_service.host import Check, Host, KafkaConnection, Part, answers
from rebond_service.memory import trimmer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Gate:
    """A fake `sleep`: records each delay asked for, and waits until the test opens it."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.asked = asyncio.Event()
        self._open = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.asked.set()
        await self._open.wait()
        self._open.clear()

    def open(self) -> None:
        self.asked.clear()
        self._open.set()


async def until(condition: Callable[[], bool], within_s: float = 2.0) -> None:
    """Let the event loop run until `condition` holds (within `within_s`)."""
    for _ in range(int(within_s * 1000)):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"not within {within_s} s")


async def forever() -> None:
    await asyncio.Event().wait()


def recording(journal: list[str], entry: str) -> Callable[[], "asyncio.Future[None]"]:
    async def step() -> None:
        journal.append(entry)

    return step  # type: ignore[return-value]


async def test_parts_start_in_order_and_stop_in_reverse() -> None:
    """Starts in declaration order before serving; at shutdown each part, last first: its
    `stop` while its task still runs, then its task cancelled, then its `close`."""
    journal: list[str] = []

    def running(name: str) -> Callable[[], "asyncio.Future[None]"]:
        async def run() -> None:
            journal.append(f"{name} runs")
            try:
                await forever()
            finally:
                journal.append(f"{name} cancelled")

        return run  # type: ignore[return-value]

    host = Host(
        [
            Part("store", start=recording(journal, "store start"), close=recording(journal, "store close")),
            Part("kafka", run=running("kafka"), close=recording(journal, "kafka close")),
            Part("dispatcher", run=running("dispatcher"), stop=recording(journal, "dispatcher stop")),
            Part("consumers", stop=recording(journal, "consumers stop")),
        ]
    )  # fmt: skip
    async with host.lifespan():
        await until(lambda: "dispatcher runs" in journal and "kafka runs" in journal)
        assert journal[0] == "store start"
        journal.clear()
    assert journal == [
        "consumers stop",
        "dispatcher stop",
        "dispatcher cancelled",
        "kafka cancelled",
        "kafka close",
        "store close",
    ]


async def test_a_part_after_another_waits_until_its_run_has_finished() -> None:
    """The dispatcher runs only once Kafka's start has returned."""
    connected = asyncio.Event()
    journal: list[str] = []

    async def connect() -> None:
        await connected.wait()
        journal.append("connected")

    async def dispatch() -> None:
        journal.append("dispatching")
        await forever()

    host = Host([Part("kafka", run=connect), Part("dispatcher", run=dispatch, after=("kafka",))])
    async with host.lifespan():
        await asyncio.sleep(0.01)  # what must NOT happen gets a chance to happen
        assert journal == [] and not host.finished("kafka")
        connected.set()
        await asyncio.wait_for(host.wait_finished("kafka"), timeout=5)
        await until(lambda: journal == ["connected", "dispatching"])
        assert host.finished("kafka")


async def test_a_task_that_dies_is_told_restarted_and_keeps_the_service_unready_until_settled() -> (
    None
):
    """The death is logged with its error and the delay before the restart; `/readyz` names the
    task from its death until it has run again for `settle_s`; then the service is ready."""
    runs = 0

    async def relay() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("unforeseen")
        await forever()

    clock, gate = Clock(), Gate()
    host = Host(
        [Part("relay", run=relay)], [Check("store", probe=lambda: _true())],
        clock=clock, sleep=gate, settle_s=10, restart_first_s=1, restart_cap_s=30,
    )  # fmt: skip
    with capture_logs() as logs:
        async with host.lifespan():
            await asyncio.wait_for(gate.asked.wait(), 2)
            dead = await host.readiness()
            gate.open()
            await until(lambda: runs == 2)
            settling = await host.readiness()
            clock.now += 10.5
            settled = await host.readiness()
    assert dead == (False, {"store": "ready", "tasks": {"relay": "failed"}})
    assert settling == dead
    assert settled == (True, {"store": "ready"})
    (death,) = [line for line in logs if line["event"] == "task_died"]
    assert death["task"] == "relay" and death["error"] == "RuntimeError"
    assert death["exc_info"] is True and death["log_level"] == "error"
    assert 0.8 <= gate.delays[0] <= 1.2 and "/readyz" in death["message"]


async def test_a_task_that_keeps_dying_waits_longer_each_time_up_to_the_cap() -> None:
    """Delays before each restart grow (1, 2, 4 … s, ±20 %) and stop at the cap."""
    gate = Gate()

    async def broken() -> None:
        raise ValueError("always")

    host = Host([Part("broken", run=broken)], sleep=gate, restart_first_s=1, restart_cap_s=4)
    with capture_logs():
        async with host.lifespan():
            for _ in range(5):
                await asyncio.wait_for(gate.asked.wait(), 2)
                gate.open()
            await until(lambda: len(gate.delays) >= 5)
    for delay, base in zip(gate.delays, [1, 2, 4, 4, 4], strict=False):
        assert base * 0.8 <= delay <= min(4, base * 1.2)


async def test_a_failed_start_stops_what_was_started_and_fails_the_start_up() -> None:
    """A migration that fails: the parts already started are stopped, and the error surfaces
    (the service does not serve half-started)."""
    journal: list[str] = []

    async def migrate() -> None:
        raise OSError("database unreachable")

    host = Host(
        [
            Part("telemetry", close=recording(journal, "telemetry close")),
            Part("store", start=migrate, close=recording(journal, "store close")),
        ]
    )
    with pytest.raises(OSError, match="database unreachable"):
        async with host.lifespan():
            pytest.fail("served although the start failed")
    assert journal == ["telemetry close"]


async def test_a_stop_that_fails_is_logged_and_the_others_still_stop() -> None:
    """The broker will not stop cleanly: the store is closed all the same."""
    journal: list[str] = []

    async def broken_stop() -> None:
        raise RuntimeError("broker stuck")

    host = Host(
        [
            Part("store", close=recording(journal, "store close")),
            Part("kafka", close=broken_stop),
        ]
    )
    with capture_logs() as logs:
        async with host.lifespan():
            pass
    assert journal == ["store close"]
    assert [(line["event"], line["part"]) for line in logs] == [("stop_failed", "kafka")]


def test_parts_must_have_distinct_names_and_wait_only_for_earlier_parts() -> None:
    """A misdeclared lifespan fails when built, not at start or stop."""
    with pytest.raises(ValueError, match="two parts"):
        Host([Part("relay"), Part("relay")])
    with pytest.raises(ValueError, match="after"):
        Host([Part("dispatcher", after=("kafka",)), Part("kafka")])
    with pytest.raises(ValueError, match="no part runs"):  # one without `run` never finishes
        Host([Part("store", start=_true)], [Check("store", _true, after=("store",))])


async def _true() -> bool:
    return True


async def test_a_check_after_a_part_is_not_asked_until_that_part_has_run() -> None:
    """A store opened in the background (migrated first): its line says unreachable, without
    a `SELECT 1` that would find its tables missing, until it is open; then what the ping says."""
    opened = asyncio.Event()
    pings: list[str] = []

    async def open_store() -> None:
        await opened.wait()

    async def ping() -> None:
        pings.append("SELECT 1")

    host = Host([Part("store", run=open_store)], [answers("store", ping, after=("store",))])
    async with host.lifespan():
        opening = await host.readiness()
        opened.set()
        await until(lambda: host.finished("store"))
        open_ = await host.readiness()
    assert opening == (False, {"store": "unreachable"})
    assert open_ == (True, {"store": "ready"}) and pings == ["SELECT 1"]


async def test_the_probes_answer_alive_and_name_each_dependency() -> None:
    """/healthz is alive whatever the dependencies; /readyz is 200 naming each one ready, and
    503 as soon as one says no, raises or takes longer than its timeout."""
    answers_now = True

    async def kafka() -> bool:
        return answers_now

    async def stalled() -> None:
        await forever()

    async def broken() -> None:
        raise OSError("connection refused")

    cases = {
        "ready": [Check("kafka", kafka, ready="connected")],
        "stalled": [answers("store", stalled, timeout_s=0.05)],
        "broken": [answers("store", broken)],
    }
    replies = {}
    for case, checks in cases.items():
        host = Host([], checks)
        app = FastAPI(lifespan=host.lifespan)
        host.install(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            health = await client.get("/healthz")
            replies[case] = await client.get("/readyz")
            if case == "ready":
                answers_now = False
                replies["kafka down"] = await client.get("/readyz")
        assert health.json() == {"status": "alive"}
    assert (replies["ready"].status_code, replies["ready"].json()) == (200, {"kafka": "connected"})
    assert (replies["kafka down"].status_code, replies["kafka down"].json()) == (
        503, {"kafka": "unreachable"},
    )  # fmt: skip
    for case in ("stalled", "broken"):
        assert (replies[case].status_code, replies[case].json()) == (503, {"store": "unreachable"})


def test_the_probes_stay_out_of_the_api_description_unless_asked() -> None:
    """Operators' probes are not part of a service's API, unless it documents them."""
    hidden, shown = FastAPI(), FastAPI()
    Host([]).install(hidden)
    Host([]).install(shown, in_schema=True)
    assert "/readyz" not in hidden.openapi()["paths"]
    assert set(shown.openapi()["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}


class FakeBroker:
    def __init__(self, answers: bool = True) -> None:
        self.answers = answers
        self.pings = 0
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def ping(self, timeout: float | None) -> bool:  # noqa: ASYNC109 (FastStream's)
        self.pings += 1
        return self.answers


async def test_kafka_is_connected_once_started_while_the_link_is_up_and_the_broker_answers() -> (
    None
):
    """Before the start (here waiting for the store's schema): unreachable; started: connected;
    during an outage: unreachable at once, without asking the broker; the part closes the
    broker at stop."""
    broker = FakeBroker()
    link = KafkaLink("k:9092", Impact("x", "x"), log=structlog.get_logger("t"))
    kafka = KafkaConnection(broker, link)
    schema = asyncio.Event()

    async def create_schema() -> None:
        await schema.wait()

    host = Host([Part("store", run=create_schema), kafka.part(after=("store",))], [kafka.check()])
    assert await host.readiness() == (False, {"kafka": "unreachable"})
    with capture_logs():
        async with host.lifespan():
            await asyncio.sleep(0.01)  # what must NOT happen gets a chance to happen
            assert not broker.started
            schema.set()
            await until(lambda: host.finished("kafka"))
            connected = await host.readiness()
            link.unreachable(1.0)
            pings = broker.pings
            during = await host.readiness()
            link.reachable()
    assert connected == (True, {"kafka": "connected"})
    assert during == (False, {"kafka": "unreachable"}) and broker.pings == pings
    assert broker.started and broker.stopped


async def test_freed_memory_is_handed_back_at_each_interval_while_serving_and_not_after() -> None:
    """While the lifespan runs, the host calls `give_back` every `give_back_every_s` (in a
    thread, the loop going on); once the service stopped, never again."""
    calls: list[float] = []
    host = Host([Part("store")], give_back=lambda: calls.append(1.0), give_back_every_s=0.01)
    async with host.lifespan():
        await until(lambda: len(calls) >= 3)
    after_stop = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == after_stop


def test_the_allocator_trim_is_found_on_glibc() -> None:
    """On this (glibc) system a service can hand freed memory back: `trimmer` finds
    `malloc_trim`, and calling it answers whether anything was returned."""
    give_back = trimmer()
    assert give_back is not None
    assert give_back() in (True, False)
