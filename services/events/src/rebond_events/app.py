"""The events service's composition root: store, outbox relay, Kafka, HTTP API and portal.

Nothing connects at import time. `create_app` builds everything with production defaults;
tests pass their own settings, and a fake sink where they do not need Kafka.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from faststream.kafka import KafkaBroker
from starlette.concurrency import run_in_threadpool

from rebond_events import api, portal
from rebond_events.consumer import subscribe_invitees
from rebond_events.observability import Observability
from rebond_events.outbox import KafkaSink, Relay, Sink, declare_publishers
from rebond_events.service import Conferences, Conflict, Forbidden, InvalidChange, NotFound
from rebond_events.settings import EventsSettings
from rebond_events.store import build_engine, migrate
from rebond_kafka.outage import Impact, KafkaLink
from rebond_kafka.reconnect import kafka_link
from rebond_kafka.security import kafka_security
from rebond_kafka.settings import bootstrap_servers
from rebond_kafka.startup import start_forever

log = structlog.get_logger(__name__)
#: What a Kafka outage means here, in the events service's outage log line (`rebond_kafka.outage`).
KAFKA_OUTAGE = Impact(
    fr="les conférences et inscriptions sont enregistrées, leurs messages partiront au retour "
    "de Kafka ; les invitations attendent dans Kafka ; /readyz répond 503",
    en="conferences and registrations are stored, their messages will go out once Kafka is "
    "back; invitations wait in Kafka; /readyz answers 503",
)


def build_broker(settings: EventsSettings) -> KafkaBroker:
    return KafkaBroker(
        bootstrap_servers(settings.kafka_bootstrap_servers),
        security=kafka_security(settings),
        acks="all",
        enable_idempotence=True,
        client_id="rebond-events",
        logger=None,
    )


def _fields(
    errors: list[dict[str, object]], prefix: tuple[str, ...] = ()
) -> list[dict[str, object]]:
    """Validation errors, each naming its field (`field`: dotted path without `body`)."""
    out = []
    for error in errors:
        loc = (*prefix, *(str(part) for part in error["loc"]))  # type: ignore[attr-defined]
        named = [part for part in loc if part not in ("body", "query", "path")]
        out.append(
            {
                "field": ".".join(named) or None,
                "loc": list(loc),
                "msg": error["msg"],
                "type": error["type"],
            }
        )
    return out


def create_app(
    settings: EventsSettings | None = None,
    broker: KafkaBroker | None = None,
    sink: Sink | None = None,
) -> FastAPI:
    """The service. With `sink`, events go there instead of Kafka and no broker is started."""
    settings = settings or EventsSettings()
    engine = build_engine(settings.database_url)
    conferences = Conferences(
        engine,
        signing_secret=settings.signing_secret.get_secret_value(),
        public_base_url=settings.public_base_url,
    )
    started: asyncio.Task[None] | None = None
    use_kafka = sink is None
    obs = Observability(settings)
    link: KafkaLink | None = None
    if use_kafka:
        broker = obs.instrument(broker or build_broker(settings))
        sink = KafkaSink(declare_publishers(broker))
        link = kafka_link(settings.kafka_bootstrap_servers, KAFKA_OUTAGE)
        obs.watch_kafka(link)

    def connected() -> bool:
        """Started, and Kafka not down: the outbox waits meanwhile instead of timing out."""
        if link is None:
            return True
        return started is not None and started.done() and not link.down

    relay = Relay(conferences, sink, connected)  # type: ignore[arg-type]
    if use_kafka:
        assert broker is not None
        subscribe_invitees(broker, conferences, relay, settings.group_id)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal started
        if settings.migrate_on_start:
            await run_in_threadpool(migrate, settings.database_url)
        tasks: list[asyncio.Task[None]] = []
        if use_kafka:
            assert broker is not None
            started = asyncio.create_task(start_forever(broker, log=log, link=link))
            tasks.append(started)
        tasks.append(asyncio.create_task(relay.run_forever(settings.outbox_interval_s)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            if broker is not None:
                await broker.stop()
            engine.dispose()

    app = FastAPI(title="Rebond events — Conférences du rebond", lifespan=lifespan)
    app.state.settings = settings
    app.state.conferences = conferences
    app.state.relay = relay
    app.state.broker = broker
    app.state.observability = obs
    obs.install(app)
    app.include_router(api.router)
    app.include_router(portal.router)
    app.mount("/static", StaticFiles(directory=portal.STATIC), name="static")

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _fields(list(error.errors()))})

    @app.exception_handler(InvalidChange)
    async def invalid_change(_: Request, error: InvalidChange) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _fields(error.errors, ("body",))})

    @app.exception_handler(NotFound)
    async def not_found(_: Request, __: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": "Introuvable."})

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, error: Forbidden) -> JSONResponse:
        return JSONResponse(status_code=403, content={"detail": str(error)})

    @app.exception_handler(Conflict)
    async def conflict(_: Request, error: Conflict) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(error)})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        if not use_kafka:
            return JSONResponse({"kafka": "not used"})
        assert broker is not None
        # `connected()` reads the link first: during an outage the answer is at once.
        ready = connected() and await broker.ping(timeout=2.0)
        return JSONResponse(
            status_code=200 if ready else 503,
            content={"kafka": "connected" if ready else "unreachable"},
        )

    return app
