"""One host for a service's lifespan: what it opens, runs in the background and closes, and its
`/healthz` and `/readyz`.

A service declares its `Part`s in the order they start, and its readiness `Check`s; `Host`
does the rest, the same way in every service:

- **start**: each part's `start` is awaited, in order, before the service serves (migrations,
  opening the store). One that fails stops the start-up, once the parts already started are
  stopped.
- **run**: each part's `run` becomes a background task, started once the parts named in its
  `after` have finished their own `run` (the dispatcher waits until Kafka is connected). A `run`
  that returns has finished (Kafka is connected). A `run` that raises has *died*: the host logs
  it with its traceback and runs it again after a growing, jittered, capped delay (1 s doubling
  up to 30 s, `rebond_kafka.backoff`), and `/readyz` answers 503, naming it, from its death
  until it has run again for `settle_s` (10 s), so a task that dies at once every time keeps the
  service unready rather than flapping. Restarted rather than left dead: the loops already
  survive the failures they expect (the store or Kafka down, each round tried again), so a death
  is something unforeseen; a dead relay or dispatcher would hold back every message after it
  while the process looked alive, and another try costs a line in the log. Readiness, not
  liveness, says it: an orchestrator stops sending traffic, and the operator reads why.
- **stop**: the parts in the reverse order of their start (the last started stops first, as
  with nested `async with`): each part's `stop` (ask it to end its work: the dispatcher ends
  the deliveries in flight), then its task cancelled, then its `close` (the broker's
  connections, the store). A `stop` or `close` that fails is logged, and the next part still
  stops: the store is closed even when the broker would not stop cleanly.
- **memory**: while the service serves, every 30 s, what its allocator freed goes back to the
  system (`rebond_service.memory`), so a burst's memory does not stay with the process.
- **probes**: `GET /healthz` answers `{"status": "alive"}` while the process serves; `GET
  /readyz` runs every check at once, each within its `timeout_s` (one named `after` a part
  only once that part's `run` has finished: a store opened in the background), and answers a
  body naming each (`{"kafka": "connected", "store": "ready"}`), 200 when all are ready, else
  503; a part that died recently adds `"tasks": {"relay": "failed"}`.
"""

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from rebond_kafka.backoff import Backoff
from rebond_kafka.outage import KafkaLink
from rebond_kafka.startup import start_forever
from rebond_service.memory import GIVE_BACK_EVERY_S, give_back_every, trimmer

_log = structlog.get_logger(__name__)
Step = Callable[[], Awaitable[object]]
#: glibc's `malloc_trim(0)`, or None elsewhere (`rebond_service.memory`).
GLIBC_TRIM = trimmer()


@dataclass(frozen=True)
class Part:
    """One piece of a service's lifespan; every step is optional (see the module's docstring)."""

    name: str
    #: Awaited before the service serves.
    start: Step | None = None
    #: A background task, from start to stop (restarted if it dies).
    run: Step | None = None
    #: At shutdown, while its task still runs: ask it to end its work.
    stop: Step | None = None
    #: At shutdown, once its task is gone: release what it holds.
    close: Step | None = None
    #: Parts whose `run` must have finished before this one's begins.
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """One line of `/readyz`: `name` is `ready` while `probe` says True within `timeout_s`,
    else `unready` (a probe that raises or takes longer is unready). Until the parts named in
    `after` have finished their `run`, it is `unready` without being probed."""

    name: str
    probe: Callable[[], Awaitable[bool]]
    ready: str = "ready"
    unready: str = "unreachable"
    timeout_s: float = 2.0
    after: tuple[str, ...] = ()


def answers(name: str, ping: Step, timeout_s: float = 2.0, *, after: tuple[str, ...] = ()) -> Check:
    """Ready while `ping` (a store's `SELECT 1`) returns within `timeout_s`: a stopped or
    stalled database makes the service unready. A store opened in the background (migrated
    first) names its part in `after`: a `SELECT 1` before would say ready before its tables are."""

    async def probe() -> bool:
        await ping()
        return True

    return Check(name, probe, timeout_s=timeout_s, after=after)


class Broker(Protocol):
    """What `KafkaConnection` starts, stops and pings (FastStream's `KafkaBroker` fits)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ping(self, timeout: float | None) -> bool: ...  # noqa: ASYNC109 (FastStream's)


class KafkaConnection:
    """A service's broker as a part and a check: started with backoff while Kafka is away
    (`start_forever`, the outage told once through `link`), closed at stop, and `connected`
    once started, while `link` is up and the broker answers a ping within 2 s."""

    def __init__(self, broker: Broker, link: KafkaLink, *, log: Any = _log, name: str = "kafka"):
        self.broker = broker
        self.link = link
        self.log = log
        self.name = name
        self.connected = False

    async def connect(self) -> None:
        await start_forever(self.broker, log=self.log, link=self.link)
        self.connected = True

    async def ready(self) -> bool:
        # The link first: during an outage the answer is at once, with no request to Kafka.
        return self.connected and not self.link.down and await self.broker.ping(timeout=2.0)

    def part(self, *, after: tuple[str, ...] = ()) -> Part:
        """Connect in the background (once the parts named in `after` have finished: the
        notifier's store schema), close the broker at stop."""
        return Part(self.name, run=self.connect, close=self.broker.stop, after=after)

    def check(self) -> Check:
        # A little over the ping's own 2 s, so that the ping answers for itself.
        return Check(self.name, self.ready, ready="connected", timeout_s=2.5)


class Host:
    """Runs `parts` (in start order) and answers readiness from `checks`. `clock` and `sleep`
    are injectable so tests see restarts and settling without waiting for them."""

    def __init__(
        self,
        parts: Sequence[Part],
        checks: Sequence[Check] = (),
        *,
        restart_first_s: float = 1.0,
        restart_cap_s: float = 30.0,
        settle_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        log: Any = _log,
        give_back: Callable[[], object] | None = GLIBC_TRIM,
        give_back_every_s: float = GIVE_BACK_EVERY_S,
    ) -> None:
        seen: set[str] = set()
        for part in parts:
            if part.name in seen:
                raise ValueError(f"two parts are named {part.name!r}")
            if missing := set(part.after) - seen:
                raise ValueError(f"{part.name!r} runs after {missing}, which no earlier part is")
            seen.add(part.name)
        running = {part.name for part in parts if part.run is not None}
        for check in checks:
            if missing := set(check.after) - running:
                raise ValueError(f"check {check.name!r} waits for {missing}, which no part runs")
        self.parts = tuple(parts)
        self.checks = tuple(checks)
        self._restart = (restart_first_s, restart_cap_s)
        self._settle_s = settle_s
        self._clock = clock
        self._sleep = sleep
        self._log = log
        self._finished = {part.name: asyncio.Event() for part in parts}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: Part -> until when it counts as failed (inf while it is dead).
        self._failed_until: dict[str, float] = {}
        self._give_back = (give_back, give_back_every_s)

    def finished(self, name: str) -> bool:
        """Whether the part's `run` has returned."""
        return self._finished[name].is_set()

    async def wait_finished(self, name: str) -> None:
        """Until the part's `run` has returned (a test's "connected to Kafka")."""
        await self._finished[name].wait()

    @asynccontextmanager
    async def lifespan(self, _app: object = None) -> AsyncIterator[None]:
        """The service's lifespan (`FastAPI(lifespan=host.lifespan)`)."""
        started: list[Part] = []
        give_back, every_s = self._give_back
        memory: asyncio.Task[None] | None = None
        try:
            for part in self.parts:
                if part.start is not None:
                    await part.start()
                started.append(part)
                if part.run is not None:
                    self._tasks[part.name] = asyncio.create_task(
                        self._supervise(part), name=f"rebond:{part.name}"
                    )
            if give_back is not None:
                memory = asyncio.create_task(
                    give_back_every(every_s, give_back), name="rebond:memory"
                )
            yield
        finally:
            if memory is not None:
                memory.cancel()
                with suppress(asyncio.CancelledError):
                    await memory
            await self._stop(started)

    async def _supervise(self, part: Part) -> None:
        assert part.run is not None
        for name in part.after:
            await self._finished[name].wait()
        first_s, cap_s = self._restart
        backoff = Backoff(first_s=first_s, cap_s=cap_s)
        while True:
            try:
                await part.run()
            except Exception as error:  # any death: told, then tried again (module docstring)
                delay = backoff.next_delay()
                self._failed_until[part.name] = math.inf
                self._log.error(
                    "task_died",
                    task=part.name,
                    error=type(error).__name__,
                    retry_in_s=round(delay, 2),
                    message=f"La tâche « {part.name} » s'est arrêtée sur une erreur ; elle "
                    f"repart dans {f'{delay:.1f}'.replace('.', ',')} s, /readyz répond 503 "
                    "d'ici là",
                    message_en=f"Task {part.name!r} died; it starts again in {delay:.1f} s, "
                    "/readyz answers 503 meanwhile",
                    exc_info=True,
                )
                await self._sleep(delay)
                self._failed_until[part.name] = self._clock() + self._settle_s
                continue
            self._finished[part.name].set()
            self._failed_until.pop(part.name, None)
            return

    async def _stop(self, started: list[Part]) -> None:
        for part in reversed(started):
            await self._quietly(part, "stop", part.stop)
            if (task := self._tasks.pop(part.name, None)) is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await self._quietly(part, "close", part.close)

    async def _quietly(self, part: Part, step: str, hook: Step | None) -> None:
        if hook is None:
            return
        try:
            await hook()
        except Exception:  # logged with its traceback; the parts before it must still stop
            self._log.exception("stop_failed", part=part.name, step=step)

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether the service is ready, and the body `/readyz` answers."""
        results = await asyncio.gather(*(self._probe(check) for check in self.checks))
        body: dict[str, Any] = {
            check.name: check.ready if ok else check.unready
            for check, ok in zip(self.checks, results, strict=True)
        }
        now = self._clock()
        failed = {name: "failed" for name, until in self._failed_until.items() if now < until}
        if failed:
            body["tasks"] = failed
        return all(results) and not failed, body

    async def _probe(self, check: Check) -> bool:
        if not all(self.finished(name) for name in check.after):
            return False
        try:
            async with asyncio.timeout(check.timeout_s):
                return bool(await check.probe())
        except Exception as error:  # a probe that fails in any way says "not ready"
            self._log.debug("readiness_check_failed", check=check.name, error=type(error).__name__)
            return False

    def install(self, app: FastAPI, *, in_schema: bool = False) -> None:
        """`GET /healthz` and `GET /readyz` on `app` (in its OpenAPI document with
        `in_schema`). The app's lifespan is `host.lifespan`, given to `FastAPI(...)`."""

        async def healthz() -> dict[str, str]:
            return {"status": "alive"}

        async def readyz() -> JSONResponse:
            ready, body = await self.readiness()
            return JSONResponse(body, status_code=200 if ready else 503)

        app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=in_schema)
        app.add_api_route(
            "/readyz",
            readyz,
            methods=["GET"],
            include_in_schema=in_schema,
            responses={
                200: {"description": "Ready: every dependency answers."},
                503: {"description": "Not ready: the body names what does not answer."},
            },
        )
