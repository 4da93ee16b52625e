"""The router's composition root: directory, store, Kafka handlers, deadline task, and its HTTP
server (probes, `/metrics`, the console's policy preview) on the service host.

Nothing connects at import time. `build` makes every part with production defaults, connecting
nothing; tests call it with their own (a clock, a store, a broker). `create_app` serves it.
"""

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import stamina
import structlog
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from rebond_contracts.topics import OVERRIDES, Service
from rebond_http.private import PrivateRoutes
from rebond_kafka.consume import DeadLetters
from rebond_kafka.outage import Impact
from rebond_kafka.reconnect import kafka_link
from rebond_router.api import preview_routes
from rebond_router.consumer import (
    KafkaOutputs,
    Retries,
    log_retry,
    new_broker,
    subscribe_router,
    topic_bounds,
)
from rebond_router.directory import load_directory
from rebond_router.lifecycle import Router
from rebond_router.observability import Observability, count_decisions
from rebond_router.overrides import Overrides
from rebond_router.preview import Previewer
from rebond_router.settings import RouterSettings
from rebond_router.store import Store, migrate
from rebond_service.host import Host, KafkaConnection, Part, answers
from rebond_sql.migrations import upgrade_apart
from rebond_sql.outbox import Relay
from rebond_sql.types import Clock, utc_now

log = structlog.get_logger(__name__)
#: What a Kafka outage means here, in the router's outage log line (`rebond_kafka.outage`).
KAFKA_OUTAGE = Impact(
    fr="les questionnaires attendent dans Kafka et seront orientés à son retour, rien n'est "
    "perdu ; /readyz répond 503",
    en="questionnaires wait in Kafka and will be routed once it is back, nothing is lost; "
    "/readyz answers 503",
)


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
    #: The coordinators' live overrides, laid over the directory.
    overrides: Overrides


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
    return Components(
        settings, obs, broker, outputs, store, relay, router, Retries.of(settings), overrides
    )


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


def create_app(settings: RouterSettings | None = None, clock: Clock = utc_now) -> FastAPI:
    """The router served: its lifespan and probes are the service host's
    (`rebond_service.host`): the store opens (migrated first) before it serves, Kafka connects
    in the background, the deadline loop runs once Kafka is connected; `/readyz` names the
    store and Kafka. Beside the probes and `/metrics` it answers the console's policy preview
    (`POST /internal/preview`, `rebond_router.api`)."""
    settings = settings or RouterSettings()
    parts = build(settings, clock=clock)
    obs = parts.obs
    link = kafka_link(settings.kafka_bootstrap_servers, KAFKA_OUTAGE)
    obs.watch_kafka(link)
    kafka = KafkaConnection(parts.broker, link, log=log)

    async def open_store() -> None:
        if settings.migrate_on_start:
            await upgrade_apart(migrate, settings.database_url)
        await parts.store.start()

    host = Host(
        [
            Part("telemetry", close=obs.close),
            Part("store", start=open_store, close=parts.store.close),
            kafka.part(),
            Part("deadlines", run=functools.partial(watch_deadlines, parts), after=(kafka.name,)),
        ],
        [kafka.check(), answers("store", parts.store.database.ping)],
    )
    app = FastAPI(title="Rebond router", lifespan=host.lifespan)
    app.state.observability = obs
    # `/metrics` and `/openapi.json` on the operators' port only, when there is one
    # (ROUTER_INTERNAL_PORT): the public port is then the console's preview and the probes.
    app.add_middleware(
        PrivateRoutes, internal_port=settings.internal_port, public=settings.internal_public
    )
    obs.install(app)
    host.install(app, in_schema=True)
    previewer = Previewer(
        parts.store,
        lambda: parts.router.directory,
        lambda: parts.overrides.latest,
        clock,
        settings.preview_weeks,
    )
    app.include_router(preview_routes(previewer, settings.preview_token))
    return app
