"""The events service's composition root: store, outbox relay, Kafka, HTTP API and portal.

`build` makes everything from the settings with production defaults, and connects nothing (the
lifespan migrates and opens the store, and starts Kafka); tests pass fakes: a `send` standing in
for Kafka, a clock. `create_app` is `build(...).web`. Its lifespan and probes are the service
host's (`rebond_service.host`): the store opened before it serves, Kafka connected and the outbox
relayed in the background, and `/readyz` from Kafka's state and the store's `SELECT 1`.
"""

from dataclasses import dataclass
from functools import partial

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from faststream.kafka import KafkaBroker
from starlette.exceptions import HTTPException as StarletteHTTPException

from rebond_contracts.topics import Service
from rebond_events import api, community_web, portal
from rebond_events.announcements import Announcer, Links
from rebond_events.community import Community
from rebond_events.conferences import Conferences
from rebond_events.consumer import subscribe_events
from rebond_events.errors import Conflict, Expired, Forbidden, InvalidChange, NotFound
from rebond_events.letters import CommunityLinks
from rebond_events.observability import Observability
from rebond_events.outbox import KafkaSend, Publisher
from rebond_events.settings import EventsSettings
from rebond_events.store import Store, migrate
from rebond_http.guard import FORM, JSON, SecurityHeaders, SubmissionGuard, edge_limits
from rebond_http.methods import allowed_methods
from rebond_http.private import PrivateRoutes
from rebond_kafka.brokers import durable_broker
from rebond_kafka.consume import Batch, DeadLetters
from rebond_kafka.outage import Impact
from rebond_kafka.reconnect import kafka_link
from rebond_kafka.security import kafka_security
from rebond_service.host import Check, Host, KafkaConnection, Part, answers
from rebond_sql.migrations import upgrade_apart
from rebond_sql.outbox import Send
from rebond_sql.types import Clock, utc_now

log = structlog.get_logger(__name__)
#: What a Kafka outage means here, in the events service's outage log line (`rebond_kafka.outage`).
KAFKA_OUTAGE = Impact(
    fr="les conférences et inscriptions sont enregistrées, leurs messages partiront au retour "
    "de Kafka ; les invitations attendent dans Kafka ; /readyz répond 503",
    en="conferences and registrations are stored, their messages will go out once Kafka is "
    "back; invitations wait in Kafka; /readyz answers 503",
)

#: The guard's answers, for organisers' JSON and people's forms alike.
GUARD_TEXTS = {
    413: (
        "payload_too_large",
        "La demande envoyée est trop volumineuse. (The request is too large.)",
    ),
    415: ("unsupported_media_type", "Envoyez un formulaire ou du JSON. (Send a form or JSON.)"),
    429: (
        "too_many_requests",
        "Trop de demandes depuis votre connexion : merci de réessayer dans une minute. "
        "(Too many requests from your connection: please try again in a minute.)",
    ),
}


def build_broker(settings: EventsSettings) -> KafkaBroker:
    return durable_broker(
        settings.kafka_bootstrap_servers, "rebond-events", security=kafka_security(settings)
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


@dataclass
class Events:
    """The built service: its web app and what it runs on."""

    web: FastAPI
    settings: EventsSettings
    conferences: Conferences
    community: Community
    publisher: Publisher
    store: Store
    #: None when a `send` stands in for Kafka.
    broker: KafkaBroker | None
    #: Its lifespan and probes.
    host: Host


def build(
    settings: EventsSettings,
    *,
    clock: Clock = utc_now,
    send: Send | None = None,
    broker: KafkaBroker | None = None,
    store: Store | None = None,
) -> Events:
    """Everything the events service runs on, nothing connected yet. Kafka (`broker`, made
    from the settings unless given) carries the outbox and the subscriptions, unless a `send`
    is given without a broker: the outbox then goes to `send` and nothing is consumed."""
    store = store or Store(settings.database_url)
    obs = Observability(settings)
    kafka: KafkaConnection | None = None
    if broker is not None or send is None:
        broker = obs.instrument(broker or build_broker(settings))
        send = send or KafkaSend(broker).send
        link = kafka_link(settings.kafka_bootstrap_servers, KAFKA_OUTAGE)
        obs.watch_kafka(link)
        kafka = KafkaConnection(broker, link, log=log)

    def connected() -> bool:
        """Started, and Kafka not down: the outbox waits meanwhile instead of timing out."""
        return kafka is None or (kafka.connected and not kafka.link.down)

    publisher = Publisher(store, send, clock, connected)
    links = Links(settings.public_base_url, settings.signing_secret.get_secret_value())
    conferences = Conferences(store, Announcer(links), publisher, clock)
    community = Community(
        store,
        CommunityLinks(settings.public_base_url, settings.signing_secret.get_secret_value()),
        publisher,
        clock,
    )
    if broker is not None:
        dead_letters = DeadLetters(broker, Service.EVENTS)
        batch = Batch(settings.batch_max_records, settings.batch_timeout_ms)
        subscribe_events(
            broker, conferences, community, dead_letters, settings.group_id, batch,
            obs.record_scope,
        )  # fmt: skip

    async def open_store() -> None:
        if settings.migrate_on_start:
            await upgrade_apart(migrate, settings.database_url)
        await store.start()

    host = Host(
        [
            Part("store", start=open_store, close=store.close),
            *([kafka.part()] if kafka is not None else []),
            Part(
                "outbox",
                run=partial(publisher.run_forever, settings.outbox_interval_s),
                close=publisher.close,
            ),
            Part(
                "reminders",
                run=partial(conferences.remind_forever, settings.reminder_interval_s),
            ),
        ],
        [
            kafka.check() if kafka is not None else Check("kafka", _unused, ready="not used"),
            answers("store", store.ping),
        ],
    )
    app = FastAPI(
        title="Rebond events — Conférences du rebond",
        lifespan=host.lifespan,
        docs_url=None,  # it would load its script from a CDN, which the CSP forbids
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.conferences = conferences
    app.state.community = community
    app.state.observability = obs
    app.include_router(api.router)
    app.include_router(portal.router)
    app.include_router(community_web.api)
    app.include_router(community_web.pages)
    app.mount("/static", StaticFiles(directory=portal.STATIC), name="static")

    _errors(app)

    host.install(app)

    app.add_middleware(
        SubmissionGuard, **edge_limits(settings), media_types=(JSON, FORM), texts=GUARD_TEXTS
    )
    app.add_middleware(SecurityHeaders, hsts_max_age_s=settings.hsts_max_age_s)
    app.add_middleware(
        PrivateRoutes, internal_port=settings.internal_port, public=settings.internal_public
    )
    obs.install(app)  # last: its middleware is the outermost (it sees the guard's answers too)
    return Events(app, settings, conferences, community, publisher, store, broker, host)


async def _unused() -> bool:
    """Kafka's line of `/readyz` when a `send` stands in for it: nothing to wait for."""
    return True


def create_app(settings: EventsSettings | None = None) -> FastAPI:
    """The web app with production defaults (`python -m rebond_events` serves it)."""
    return build(settings or EventsSettings()).web


def _errors(app: FastAPI) -> None:
    """What each refusal answers: a JSON body naming the field (422), or saying why."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _fields(list(error.errors()))})

    @app.exception_handler(InvalidChange)
    async def invalid_change(_: Request, error: InvalidChange) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _fields(error.errors, ("body",))})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = getattr(error, "headers", None)
        if error.status_code == 405:
            headers = {
                **(headers or {}),
                "Allow": allowed_methods(app.router.routes, request.scope),
            }
        return JSONResponse(
            status_code=error.status_code, headers=headers, content={"detail": error.detail}
        )

    @app.exception_handler(NotFound)
    async def not_found(_: Request, __: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": "Introuvable."})

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, error: Forbidden) -> JSONResponse:
        return JSONResponse(status_code=403, content={"detail": str(error)})

    @app.exception_handler(Expired)
    async def expired(_: Request, __: Expired) -> JSONResponse:
        return JSONResponse(
            status_code=410,
            content={
                "detail": "Ce lien d'annulation n'est plus valable. "
                "(This cancellation link is no longer valid.)"
            },
        )

    @app.exception_handler(Conflict)
    async def conflict(_: Request, error: Conflict) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(error)})
