"""Intake's composition root: `build` makes the app, its use cases and adapters with production
defaults, connecting nothing; tests call it with fakes. Its lifespan and probes are the service
host's (`rebond_service.host`): the store opened, Kafka's producer and consumer connected, all
in the background (intake serves at once, answering 503 until they are), and `/readyz` from the
producer's state and, once the store is open, its `SELECT 1`."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from faststream.kafka import KafkaBroker
from starlette.exceptions import HTTPException as StarletteHTTPException

from rebond_http.guard import FORM, JSON, SecurityHeaders, SubmissionGuard, edge_limits
from rebond_http.inputs import Loc
from rebond_http.methods import allowed_methods
from rebond_http.private import PrivateRoutes
from rebond_intake.api import Adapters, router
from rebond_intake.consumer import build_consumer
from rebond_intake.errors import localise, request_locale
from rebond_intake.observability import Observability
from rebond_intake.pages import pages
from rebond_intake.publisher import KafkaSubmissionPublisher, SubmissionPublisher, build_broker
from rebond_intake.recent import RecentlyReceived
from rebond_intake.settings import IntakeSettings
from rebond_intake.store import SqlStatusStore, StatusStore, patiently
from rebond_intake.submissions import Submissions
from rebond_kafka.outage import Impact
from rebond_kafka.reconnect import kafka_link
from rebond_kafka.security import kafka_security
from rebond_kafka.startup import start_forever
from rebond_service.host import Check, Host, Part, answers
from rebond_sql.types import Clock, utc_now

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = structlog.get_logger(__name__)
STATIC = Path(str(files("rebond_intake") / "static"))
#: What a Kafka outage means here, in intake's outage log line (`rebond_kafka.outage`).
KAFKA_OUTAGE = Impact(
    fr="les questionnaires sont refusés (503, à renvoyer plus tard), aucun n'est accepté "
    "sans Kafka ; /readyz répond 503",
    en="submissions are refused (503, to be sent again later), none is accepted without "
    "Kafka; /readyz answers 503",
)


def _store_opener(store: SqlStatusStore, migrate: bool) -> Callable[[], Awaitable[None]]:
    """Migrate (when `migrate`) and open the store, retrying with a growing, jittered delay
    while the database is unreachable; meanwhile submissions and status requests answer 503. A
    failure that is not an outage (a migration that fails) ends the task: the host says it and
    tries again later (`rebond_service.host`)."""

    async def start() -> None:
        if migrate:
            await store.migrate()
        await store.start()

    async def open_store() -> None:
        await patiently(start, event="store_unreachable")

    return open_store


def _invalid_text(headers: Mapping[str, str], locations: list[Loc]) -> dict[str, Any]:
    """The guard's 422 for text that is not text, in intake's shape and the person's language."""
    locale = request_locale(None, headers.get("accept-language"))
    errors = [{"loc": loc, "type": "invalid_characters"} for loc in locations]
    return {"error": "invalid", "locale": locale, "detail": localise(errors, locale)}


@dataclass(frozen=True)
class App:
    """The built service: its web app, the use cases its routes call and their store."""

    web: FastAPI
    submissions: Submissions
    store: StatusStore


def build(
    settings: IntakeSettings,
    *,
    clock: Clock = utc_now,
    publisher: SubmissionPublisher | None = None,
    store: StatusStore | None = None,
    consume: bool | None = None,
    span_exporter: "SpanExporter | None" = None,
) -> App:
    """Everything intake runs on, connected to nothing (its lifespan connects). By default it
    publishes to and consumes from Kafka and keeps its status store at `settings.store_url`
    (migrated at start when INTAKE_MIGRATE_ON_START); a given `publisher` (a fake) turns the
    consumer off unless `consume=True`. A given `store` is used as it is (the caller migrates,
    starts and closes it). `span_exporter` receives the spans when INTAKE_OTEL_ENABLED."""
    obs = Observability(settings, span_exporter)
    link = kafka_link(settings.kafka_bootstrap_servers, KAFKA_OUTAGE)
    obs.watch_kafka(link)
    security = kafka_security(settings)
    own_store: SqlStatusStore | None = None
    if store is None:
        store = own_store = SqlStatusStore(settings.store_url)
    kafka: KafkaSubmissionPublisher | None = None
    if publisher is None:
        broker = build_broker(settings.kafka_bootstrap_servers, security=security)
        publisher = kafka = KafkaSubmissionPublisher(obs.instrument(broker), link)
    consumer: KafkaBroker | None = None
    if (kafka is not None) if consume is None else consume:
        consumer = obs.instrument(build_consumer(
            settings.kafka_bootstrap_servers, store, group_id=settings.group_id,
            security=security, record_scope=obs.record_scope,
        ))  # fmt: skip
    submissions = Submissions(
        store,
        publisher,
        erasure_key=settings.erasure_key.get_secret_value(),
        publish_timeout_s=settings.publish_timeout_s,
        clock=clock,
        recent=RecentlyReceived(),
    )

    parts: list[Part] = []
    if own_store is not None:
        parts.append(Part(
            "store", run=_store_opener(own_store, settings.migrate_on_start), close=own_store.close
        ))  # fmt: skip
    if kafka is not None:
        parts.append(Part("kafka", run=kafka.connect_forever, close=kafka.close))
    if consumer is not None:
        parts.append(Part("consumer", run=partial(start_forever, consumer, log=log, link=link),
                          close=consumer.stop))  # fmt: skip

    async def kafka_ready() -> bool:
        return publisher.ready()

    checks = [Check("kafka", kafka_ready, ready="connected")]
    if own_store is not None:  # a given store is the caller's to open and watch
        checks.append(answers("store", own_store.database.ping, after=("store",)))
    host = Host(parts, checks)

    app = FastAPI(
        title="Rebond intake",
        version="1.0.0",
        description="Le questionnaire du Portail du rebond des entrepreneurs : envoi des "
        "réponses, formulaire, et suivi d'une demande par sa référence.",
        lifespan=host.lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.intake = Adapters(submissions, settings)
    app.include_router(router)
    app.include_router(pages)
    host.install(app)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        locale = request_locale(error.body, request.headers.get("accept-language"))
        return JSONResponse(
            status_code=422,
            content={
                "error": "invalid",
                "locale": locale,
                "detail": localise(list(error.errors()), locale),
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 415: "unsupported_media_type"}
        headers = getattr(error, "headers", None)
        if error.status_code == 405:
            headers = {
                **(headers or {}),
                "Allow": allowed_methods(app.router.routes, request.scope),
            }
        return JSONResponse(
            status_code=error.status_code,
            headers=headers,
            content={"error": codes.get(error.status_code, "error"), "message": str(error.detail)},
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.add_middleware(
        SubmissionGuard, **edge_limits(settings), media_types=(JSON, FORM), invalid=_invalid_text
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=[
                "Content-Type",
                "Idempotency-Key",
                "Accept-Language",
                "X-Erasure-Secret",
            ],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders, hsts_max_age_s=settings.hsts_max_age_s)
    app.add_middleware(
        PrivateRoutes, internal_port=settings.internal_port, public=settings.internal_public
    )
    obs.install(app)  # last: its middleware is the outermost
    return App(app, submissions, store)


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    """The web app with production defaults (`python -m rebond_intake` serves it)."""
    return build(settings or IntakeSettings()).web
