"""The notifier's composition root: `build` makes the Kafka consumers, the outbox relay, the
delivery dispatcher, the store and the HTTP app with production adapters (SMTP, httpx, the
system clock); tests call it with their own mailer, webhook poster or clock. Nothing connects
anywhere before the lifespan, the service host's (`rebond_service.host`), starts; `/readyz`
answers from Kafka's state and, once the store is open, its `SELECT 1`.
"""

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from faststream.kafka import KafkaBroker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from rebond_http.guard import SecurityHeaders
from rebond_http.private import PrivateRoutes
from rebond_kafka.outage import Impact, KafkaLink
from rebond_kafka.reconnect import kafka_link
from rebond_notifier.channels import HttpWebhookPoster, Mailer, SmtpMailer, WebhookPoster
from rebond_notifier.config import load_associations
from rebond_notifier.consumer import Handlers, build_broker, outbox_sender, subscribe_all
from rebond_notifier.dispatcher import Dispatcher, RetryPolicy
from rebond_notifier.observability import Observability, count_referrals_and_deliveries
from rebond_notifier.planning import LinkMaker
from rebond_notifier.settings import NotifierSettings
from rebond_notifier.store import DeliveryStore, migrate
from rebond_notifier.web import build_router
from rebond_service.host import Host, KafkaConnection, Part, answers
from rebond_sql.migrations import upgrade_apart
from rebond_sql.outbox import Relay
from rebond_sql.types import Clock, utc_now

log = structlog.get_logger(__name__)
#: What a Kafka outage means here, in the notifier's outage log line (`rebond_kafka.outage`).
KAFKA_OUTAGE = Impact(
    fr="les orientations attendent dans Kafka et seront transmises aux associations à son "
    "retour, rien n'est perdu ; /readyz répond 503",
    en="referrals wait in Kafka and will be handed to the associations once it is back, "
    "nothing is lost; /readyz answers 503",
)


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}


def allowed_methods(request: Request, named: str) -> str:
    """Every method the request's path answers to. Starlette's 405 names (`named`) those of the
    first route matching the path only, and the answer page's GET and POST are two routes: the
    API description lists them all."""
    methods = {m.strip() for m in named.split(",") if m.strip()}
    for template, operations in request.app.openapi().get("paths", {}).items():
        if compile_path(template)[0].match(request.scope["path"]):
            methods.update(m.upper() for m in operations if m.upper() in _METHODS)
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


@dataclass
class Notifier:
    """The built service: its parts, its web app, and its host (lifespan and probes). `start`
    and `stop` run the host's lifespan without a web server (tests)."""

    settings: NotifierSettings
    store: DeliveryStore
    relay: Relay
    broker: KafkaBroker
    dispatcher: Dispatcher
    link: KafkaLink
    mailer: Mailer
    webhooks: WebhookPoster
    host: Host
    web: FastAPI = field(init=False)
    _running: AsyncExitStack = field(default_factory=AsyncExitStack, init=False)

    async def start(self) -> None:
        """Migrate the store, then connect and dispatch in the background."""
        await self._running.enter_async_context(self.host.lifespan())

    async def wait_connected(self, timeout_s: float = 60.0) -> None:
        async with asyncio.timeout(timeout_s):
            await self.host.wait_finished("kafka")

    async def stop(self) -> None:
        await self._running.aclose()


def _host(
    settings: NotifierSettings,
    store: DeliveryStore,
    broker: KafkaBroker,
    link: KafkaLink,
    dispatcher: Dispatcher,
    mailer: Mailer,
    webhooks: WebhookPoster,
) -> Host:
    """The notifier's lifespan: the store migrated and opened, then Kafka connected, then the
    dispatcher run, all in the background (the answer pages serve at once). At stop, in the
    reverse order: reading Kafka stops first (no new work, and no batch written beside what
    follows), then the dispatcher ends the deliveries in flight and hands back the rest, then
    Kafka, the channels this service made and the store are closed. Ready while Kafka is
    connected and the store, once open, answers its `SELECT 1`."""

    async def open_store() -> None:
        if settings.migrate_on_start:
            await upgrade_apart(migrate, settings.database_url)
        await store.database.start()

    async def stop_dispatching() -> None:
        for subscriber in broker.subscribers:
            await subscriber.stop()
        await dispatcher.stop()

    kafka = KafkaConnection(broker, link, log=log)
    return Host(
        [
            Part("store", run=open_store, close=store.close),
            Part("mailer", close=mailer.close if isinstance(mailer, SmtpMailer) else None),
            Part(
                "webhooks",
                close=webhooks.close if isinstance(webhooks, HttpWebhookPoster) else None,
            ),
            kafka.part(after=("store",)),
            Part("dispatcher", run=dispatcher.run, stop=stop_dispatching, after=("kafka",)),
        ],
        [kafka.check(), answers("store", store.database.ping, after=("store",))],
    )


def _smtp(settings: NotifierSettings) -> SmtpMailer:
    return SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        settings.mail_from,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        start_tls=settings.smtp_starttls,
        use_tls=settings.smtp_tls,
        ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        timeout_s=settings.smtp_timeout_s,
        local_hostname=settings.smtp_local_hostname,
    )


def build(
    settings: NotifierSettings,
    *,
    clock: Clock = utc_now,
    mailer: Mailer | None = None,
    webhooks: WebhookPoster | None = None,
) -> Notifier:
    """Everything the notifier runs on, with production adapters where none is given, not yet
    connected. Fails fast on a bad associations file."""
    associations = load_associations(
        settings.associations_file, production=settings.environment == "production"
    )
    store = DeliveryStore.from_url(settings.database_url, clock)
    link_key = settings.link_secret.get_secret_value().encode()
    links = LinkMaker(
        link_key, settings.public_base_url, settings.link_valid_days, clock,
        portal_url=settings.portal_base_url, follow_up_days=settings.follow_up_link_days,
        privacy_contact=settings.privacy_contact,
    )  # fmt: skip
    obs = Observability(settings)
    broker = obs.instrument(build_broker(settings))
    relay = store.relay(outbox_sender(broker))
    mailer = mailer or _smtp(settings)
    webhooks = webhooks or HttpWebhookPoster()
    dispatcher = Dispatcher(
        store, mailer, webhooks, associations, relay,
        RetryPolicy(
            max_attempts=settings.max_attempts, base_s=settings.retry_base_s,
            cap_s=settings.retry_cap_s, lease_s=settings.lease_s,
            webhook_timeout_s=settings.webhook_timeout_s, smtp_timeout_s=settings.smtp_timeout_s,
        ),
        poll_interval_s=settings.poll_interval_s, clock=clock,
        stale_after=timedelta(seconds=settings.outbox_stale_after_s),
    )  # fmt: skip
    handlers = Handlers(
        store, relay, associations, links, dispatcher.wake,
        callback_days=settings.callback_working_days,
    )  # fmt: skip
    subscribe_all(broker, handlers, settings, obs.record_scope)
    link = kafka_link(settings.kafka_bootstrap_servers, KAFKA_OUTAGE)
    obs.watch_kafka(link)
    count_referrals_and_deliveries(obs)
    host = _host(settings, store, broker, link, dispatcher, mailer, webhooks)
    notifier = Notifier(settings, store, relay, broker, dispatcher, link, mailer, webhooks, host)
    pages = build_router(store, link_key, dispatcher.publish_soon, clock)
    notifier.web = _web(notifier, obs, pages)
    return notifier


def create_app(
    settings: NotifierSettings | None = None,
    *,
    mailer: Mailer | None = None,
    webhooks: WebhookPoster | None = None,
) -> FastAPI:
    """The notifier's web app with production defaults (`python -m rebond_notifier` serves it)."""
    return build(settings or NotifierSettings(), mailer=mailer, webhooks=webhooks).web


def _web(notifier: Notifier, obs: Observability, pages: APIRouter) -> FastAPI:
    """The HTTP side: the answer pages, health and readiness (the host's), behind the security
    headers."""
    settings = notifier.settings

    app = FastAPI(
        title="Rebond notifier",
        description="Les pages de réponse des liens envoyés aux associations, et la santé du "
        "service.",
        lifespan=notifier.host.lifespan,
        docs_url=None,  # its page loads scripts from elsewhere, which the CSP forbids
        redoc_url=None,
    )
    app.state.notifier = notifier
    app.state.observability = obs
    app.include_router(pages)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 405:
            named = (error.headers or {}).get("Allow", "")
            error.headers = {**(error.headers or {}), "Allow": allowed_methods(request, named)}
        return await http_exception_handler(request, error)

    notifier.host.install(app, in_schema=True)

    app.add_middleware(
        PrivateRoutes, internal_port=settings.internal_port, public=settings.internal_public
    )
    app.add_middleware(SecurityHeaders, hsts_max_age_s=settings.hsts_max_age_s)  # on every answer
    obs.install(app)  # last: its middleware is the outermost
    return app
