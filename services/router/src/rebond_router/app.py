"""The router's composition root: directory, store, Kafka handlers, deadline task, health HTTP.

Nothing connects at import time. `build` makes every part with production defaults, connecting
nothing; tests call it with their own (a clock, a store, a broker). `create_app` serves it.
"""

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import stamina
import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from rebond_contracts.topics import OVERRIDES, Service
from rebond_kafka.consume import DeadLetters
from rebond_kafka.outage import Impact
from rebond_kafka.reconnect import kafka_link
from rebond_kafka.startup import start_forever
from rebond_router.consumer import (
    KafkaOutputs,
    Retries,
    log_retry,
    new_broker,
    subscribe_router,
    topic_bounds,
)
from rebond_router.directory import load_directory
from rebond_router.lifecycle import Clock, Router
from rebond_router.observability import Observability, count_decisions
from rebond_router.overrides import Overrides
from rebond_router.settings import RouterSettings
from rebond_router.store import Store, migrate
from rebond_sql.outbox import Relay

log = structlog.get_logger(__name__)
#: What a Kafka outage means here, in the router's outage log line (`rebond_kafka.outage`).
KAFKA_OUTAGE = Impact(
    fr="les questionnaires attendent dans Kafka et seront orientés à son retour, rien n'est "
    "perdu ; /readyz répond 503",
    en="questionnaires wait in Kafka and will be routed once it is back, nothing is lost; "
    "/readyz answers 503",
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Components:
    settings: RouterSettings
    obs: Observability
    broker: KafkaBroker
    outputs: KafkaOutputs
    store: Store
    #: Publishes the store's outbox (the router's `Publisher`).
    relay: Relay
    router: Router
    retries: Retries


def build(
    settings: RouterSettings,
    *,
    clock: Clock = utc_now,
    store: Store | None = None,
    broker: KafkaBroker | None = None,
    obs: Observability | None = None,
) -> Components:
    """Everything the router runs on, production adapters unless given, nothing connected yet
    (the store opens, and is migrated, at start; the broker connects at start). Fails fast on a
    bad directory."""
    directory = load_directory(settings.directory_path)
    store = store or Store.from_url(settings.database_url)
    obs = obs or Observability(settings)
    broker = obs.instrument(broker or new_broker(settings))
    outputs = KafkaOutputs(broker)
    relay = store.relay(outputs.send, clock, settings.batch_max_records)
    router = Router(
        store, relay, directory, clock, decided=count_decisions(obs),
        follow_up_after=timedelta(days=settings.follow_up_after_days),
    )  # fmt: skip
    overrides = Overrides(
        directory,
        router,
        outputs.send_applied,
        clock,
        functools.partial(topic_bounds, settings, OVERRIDES),
    )
    subscribe_router(
        broker, router, DeadLetters(broker, Service.ROUTER), settings, obs.record_scope, overrides
    )
    # Retries log through the router's hook, which names the error's type only (stamina's
    # default hooks would log its text; the setting is the process's, and the same each time).
    stamina.instrumentation.set_on_retry_hooks([log_retry])
    return Components(settings, obs, broker, outputs, store, relay, router, Retries.of(settings))


async def watch_deadlines(
    parts: Components, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Every `deadline_check_interval_s`: send reminders and follow-ups, expire overdue
    referrals, and publish
    outputs a crashed instance left behind. Failures are logged and retried next round."""
    settings = parts.settings
    stale = timedelta(seconds=settings.outbox_stale_after_s)
    while True:
        try:
            await parts.retries.run(parts.router.check_deadlines, "deadlines")
            await parts.relay.flush(older_than=stale)
        except Exception:  # the loop must outlive any one failure; the next round retries
            log.exception("deadline_check_failed")
        await sleep(settings.deadline_check_interval_s)


class Readiness(BaseModel):
    """What `/readyz` says of each dependency."""

    kafka: str
    store: str


def create_app(settings: RouterSettings | None = None, clock: Clock = utc_now) -> FastAPI:
    settings = settings or RouterSettings()
    parts = build(settings, clock=clock)
    obs = parts.obs
    link = kafka_link(settings.kafka_bootstrap_servers, KAFKA_OUTAGE)
    obs.watch_kafka(link)
    started: asyncio.Task[None] | None = None
    connected = asyncio.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal started
        if settings.migrate_on_start:
            await asyncio.to_thread(migrate, settings.database_url)
        await parts.store.start()

        async def run() -> None:
            await start_forever(parts.broker, log=log, link=link)
            connected.set()
            await watch_deadlines(parts)

        started = asyncio.create_task(run())
        try:
            yield
        finally:
            started.cancel()
            with suppress(asyncio.CancelledError):
                await started
            await parts.broker.stop()
            await parts.store.close()

    app = FastAPI(title="Rebond router", lifespan=lifespan)
    app.state.observability = obs
    obs.install(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    async def store_answers() -> bool:
        """The store takes a query within 2 s (a stopped database makes the router unready)."""
        try:
            async with asyncio.timeout(2.0):
                await parts.store.database.run(
                    lambda connection: connection.execute(text("SELECT 1"))
                )
        except (SQLAlchemyError, OSError, TimeoutError):
            return False
        return True

    @app.get(
        "/readyz",
        responses={
            200: {"model": Readiness, "description": "Connected to Kafka, the store answers"},
            503: {"model": Readiness, "description": "Kafka or the store unreachable"},
        },
    )
    async def readyz() -> JSONResponse:
        # The link first: during an outage the answer is at once, with no request to Kafka.
        kafka = connected.is_set() and not link.down and await parts.broker.ping(timeout=2.0)
        store = await store_answers()
        return JSONResponse(
            status_code=200 if kafka and store else 503,
            content={
                "kafka": "connected" if kafka else "unreachable",
                "store": "ready" if store else "unreachable",
            },
        )

    return app
