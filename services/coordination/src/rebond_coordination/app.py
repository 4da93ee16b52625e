"""The coordination service's composition root.

`build` makes everything from the settings, with production defaults for every port, and
tests pass fakes; nothing connects at import time. By default the console is plugged in: Kafka
carries the inbox's answers out and the other services' facts in (`kafka.py`), the events
service's API its conferences, the router's `POST /internal/preview` the policy preview (once
`COORDINATION_ROUTER_URL` says where the router is; else it stays `ports.Unconnected`) and
SMTP its invitations (`clients.py`). A given `outbound` (a fake) leaves Kafka out unless a
`broker` is given too. Its lifespan and probes are the
service host's (`rebond_service.host`): the parts below, and the store's and Kafka's readiness.
"""

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from faststream.kafka import KafkaBroker
from starlette.exceptions import HTTPException as StarletteHTTPException

from rebond_contracts.topics import Service
from rebond_coordination.auth import SessionRules
from rebond_coordination.clients import HttpEvents, HttpPreview, SmtpMailer
from rebond_coordination.kafka import KafkaOutbound, build_broker, subscribe_facts
from rebond_coordination.observability import Observability
from rebond_coordination.ports import (
    EventsClient,
    EventsNotFound,
    EventsUnavailable,
    Mailer,
    Outbound,
    PreviewClient,
    Unconnected,
)
from rebond_coordination.relay import Relay
from rebond_coordination.routes import (
    admin,
    auth,
    conferences,
    directory,
    inbox,
    moderation,
    queue,
    statistics,
)
from rebond_coordination.settings import CoordinationSettings
from rebond_coordination.store import Store, migrate
from rebond_coordination.web import (
    STATIC,
    CsrfRefused,
    Forbidden,
    NotFound,
    NotSignedIn,
    Services,
    message,
    to_sign_in,
)
from rebond_http.clients import ClientAddress
from rebond_http.guard import SecurityHeaders, TokenBucketLimiter
from rebond_http.private import PrivateRoutes
from rebond_kafka.consume import DeadLetters
from rebond_kafka.outage import Impact
from rebond_kafka.reconnect import kafka_link
from rebond_service.host import Check, Host, KafkaConnection, Part, answers
from rebond_sql.migrations import upgrade_apart
from rebond_sql.types import Clock, utc_now

log = structlog.get_logger(__name__)
#: What a Kafka outage means here, in the outage log line (`rebond_kafka.outage`).
KAFKA_OUTAGE = Impact(
    fr="les réponses, attributions, clôtures, suivis et ajustements d'annuaire attendent dans "
    "la console et partiront au retour de Kafka ; les nouveaux dossiers arriveront à ce "
    "moment-là ; /readyz répond 503",
    en="answers, assignments, closures, outcomes and directory overrides wait in the console "
    "and go out once Kafka is back; new cases arrive then; /readyz answers 503",
)


@dataclass
class App:
    """The built service: its web app, what the routes and projections run on, and its host
    (lifespan and probes)."""

    web: FastAPI
    services: Services
    host: Host

    @property
    def store(self) -> Store:
        return self.services.store


def build(
    settings: CoordinationSettings,
    *,
    outbound: Outbound | None = None,
    mailer: Mailer | None = None,
    preview: PreviewClient | None = None,
    events: EventsClient | None = None,
    clock: Clock | None = None,
    broker: KafkaBroker | None = None,
) -> App:
    """Everything the console runs on, not yet connected (the lifespan opens the store, then
    Kafka in the background)."""
    clock = clock or utc_now
    store = Store(settings.database)
    obs = Observability(settings)
    parts: list[Part] = []
    checks: list[Check] = []
    if broker is not None or outbound is None:
        broker = obs.instrument(broker or build_broker(settings))
        link = kafka_link(settings.kafka_bootstrap_servers, KAFKA_OUTAGE)
        obs.watch_kafka(link)
        kafka = KafkaConnection(broker, link, log=log)
        subscribe_facts(
            broker, store, DeadLetters(broker, Service.COORDINATION), settings.group_id,
            obs.record_scope,
        )  # fmt: skip
        parts.append(kafka.part())  # after the store: its start is awaited first
        checks.append(kafka.check())
        if outbound is None:
            outbound = KafkaOutbound(broker, lambda: kafka.connected and not link.down)
    if events is None:
        http = httpx.AsyncClient(base_url=settings.events_url, timeout=settings.events_timeout_s)
        parts.append(Part("events client", close=http.aclose))
        events = HttpEvents(http, settings.events_organiser_keys)
    if preview is None and settings.router_url is not None:
        router = httpx.AsyncClient(base_url=settings.router_url, timeout=settings.router_timeout_s)
        parts.append(Part("router client", close=router.aclose))
        preview = HttpPreview(router, settings.router_preview_token)
    services = Services(
        settings=settings,
        store=store,
        relay=Relay(store, outbound, clock),
        mailer=mailer or SmtpMailer(settings),
        preview=preview or Unconnected(),
        events=events,
        clock=clock,
        limiter=TokenBucketLimiter(settings.sign_in_per_minute, settings.sign_in_burst),
        clients=ClientAddress(settings.trusted_proxies),
        sessions=SessionRules(
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_absolute_hours),
        ),
        observability=obs,
    )

    async def open_store() -> None:
        if settings.migrate_on_start:
            await upgrade_apart(migrate, settings.database)
        await store.start()

    host = Host(
        [
            Part("telemetry", close=obs.close),
            Part("store", start=open_store, close=store.close),
            *parts,
            Part("relay", run=partial(services.relay.run_forever, settings.relay_interval_s)),
            Part(
                "queue metrics",
                run=partial(_refresh_forever, services, settings.metrics_interval_s),
            ),
        ],
        [answers("store", store.database.ping), *checks],
    )
    web = FastAPI(
        title="Rebond coordination",
        lifespan=host.lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    web.state.services = services
    # `/metrics` on the operators' port only, when there is one (COORDINATION_INTERNAL_PORT),
    # as every service: not for whoever the authenticating proxy lets in.
    web.add_middleware(
        PrivateRoutes, internal_port=settings.internal_port, public=settings.internal_public
    )
    obs.install(web)
    web.add_middleware(SecurityHeaders)
    for module in (auth, queue, directory, statistics, inbox, conferences, moderation, admin):
        web.include_router(module.router)
    web.mount("/static", StaticFiles(directory=STATIC), name="static")
    _errors(web)

    host.install(web)
    return App(web, services, host)


def create_app(settings: CoordinationSettings | None = None, **ports: object) -> FastAPI:
    """The web app with production defaults (`python -m rebond_coordination` serves it)."""
    return build(settings or CoordinationSettings(), **ports).web  # type: ignore[arg-type]


async def _refresh_forever(services: Services, interval_s: float) -> None:
    while True:
        try:
            await services.observability.refresh_queue(services.store, services.clock)
        except Exception:  # the store may be down: the next round tries again
            log.exception("queue_metrics_failed")
        await asyncio.sleep(interval_s)


@dataclass(frozen=True)
class _Refusal:
    """A refusal's page in French: its title, text and status, with the signed-in person's
    menu only where `keeps_menu`."""

    title: str
    text: str
    status_code: int
    keeps_menu: bool = False

    async def __call__(self, request: Request, _: Exception) -> Response:
        signed = getattr(request.state, "signed", None) if self.keeps_menu else None
        return message(request, self.title, self.text, self.status_code, signed)


_NOT_FOUND = _Refusal(
    "Page introuvable",
    "Cette page n'existe pas, ou elle ne fait pas partie de ce que votre compte peut voir.", 404,
)  # fmt: skip
_REFUSALS: dict[type[Exception], _Refusal] = {
    Forbidden: _Refusal(
        "Accès réservé",
        "Cette partie de la console n'est pas ouverte à votre rôle. Si vous pensez en avoir "
        "besoin, demandez-le à la coordination du groupement.", 403, keeps_menu=True,
    ),
    NotFound: _NOT_FOUND,
    EventsNotFound: _NOT_FOUND,
    EventsUnavailable: _Refusal(
        "Service des conférences indisponible",
        "Le service des conférences ne répond pas pour l'instant. Rien n'a été modifié : "
        "réessayez dans quelques minutes.", 503,
    ),
    CsrfRefused: _Refusal(
        "Formulaire expiré",
        "Ce formulaire n'est plus valable (page ouverte depuis longtemps, ou envoyée d'ailleurs). "
        "Rechargez la page et recommencez : rien n'a été modifié.", 403,
    ),
}  # fmt: skip


def _errors(web: FastAPI) -> None:
    """Every refusal is a page in French, never a stack trace."""

    @web.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, error: NotSignedIn) -> Response:
        return to_sign_in(error.next_path)

    for error, page in _REFUSALS.items():
        web.add_exception_handler(error, page)

    @web.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404:
            return await _NOT_FOUND(request, error)
        return message(request, "Requête refusée", str(error.detail), error.status_code)
