"""Observability: trace context, log context and Prometheus metrics, for HTTP and for Kafka.

- Every HTTP request and every consumed record runs in a span of its own: the W3C `traceparent`
  that came in (HTTP header or Kafka record header) is continued, or a trace is started; the
  trace and span ids, the route, and for a record its reference (`ce_correlationid`), event id
  (`ce_id`) and topic are bound in structlog's context variables, so every log line says them.
- Every record published carries `traceparent` (the current span, or a new trace when nothing
  is in progress, e.g. a background relay); a record that already has one keeps it (dead letters
  keep the failed record's).
- The spans are exported with OpenTelemetry only when switched on (`<SVC>_OTEL_ENABLED`): the
  ids are ours either way, so logs and headers agree with the exported trace.
- `GET /metrics` (Prometheus text): HTTP requests by route template, method and status, and
  their latency; FastStream's per-topic consumed/published/processing-latency series; records
  failed and dead-lettered per topic; consumer lag per group, topic and partition (refreshed on
  each scrape); whether Kafka is reached, its outages and their seconds (`watch_kafka`). Labels
  never hold a reference or anything a person wrote.

Process plumbing shared by the four services (it carries no event, schema or topic: those stay in
`contracts/`); each service names itself (`Observability("router", settings)`) and adds its own
series in its `observability.py`.
"""

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

import structlog
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rebond_contracts.payloads import REFERENCE_PATTERN
from rebond_contracts.tracing import HEADER, TraceParent, from_headers
from rebond_kafka.outage import KafkaLink

log = structlog.get_logger(__name__)
_REFERENCE = re.compile(REFERENCE_PATTERN.strip("^$"))

_trace: ContextVar[TraceParent | None] = ContextVar("rebond_trace", default=None)
_consumed_topic: ContextVar[str | None] = ContextVar("rebond_consumed_topic", default=None)
B = TypeVar("B", bound=KafkaBroker)
PublishHook = Callable[[str, Any], None]


class OtelSettings(Protocol):
    otel_enabled: bool
    otel_endpoint: str


def current_trace() -> TraceParent | None:
    """The span in progress (HTTP request or consumed record), if any."""
    return _trace.get()


class Span:
    def __init__(self, parent: TraceParent, otel: trace.Span | None) -> None:
        self.parent = parent
        self._otel = otel

    def rename(self, name: str) -> None:
        if self._otel is not None:
            self._otel.update_name(name)

    def set(self, key: str, value: str | int) -> None:
        if self._otel is not None:
            self._otel.set_attribute(key, value)


class Tracer:
    """Our spans; recorded and exported through OpenTelemetry only when a provider is given."""

    def __init__(self, provider: TracerProvider | None, service: str) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer(f"rebond.{service}") if provider else None

    @contextmanager
    def span(self, name: str, parent: TraceParent | None, kind: SpanKind) -> Iterator[Span]:
        if self._tracer is None:
            yield Span(parent.child() if parent else TraceParent.start(), None)
            return
        context = None
        if parent is not None:
            remote = SpanContext(
                int(parent.trace_id, 16), int(parent.span_id, 16), is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED if parent.sampled else 0),
            )  # fmt: skip
            context = trace.set_span_in_context(NonRecordingSpan(remote))
        with self._tracer.start_as_current_span(name, context=context, kind=kind) as otel:
            own = otel.get_span_context()
            yield Span(
                TraceParent(
                    format(own.trace_id, "032x"),
                    format(own.span_id, "016x"),
                    own.trace_flags.sampled,
                ),
                otel,
            )


def tracer_provider(
    settings: OtelSettings, service: str, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """None when OpenTelemetry is off (the default); else a provider exporting to
    `otel_endpoint` (OTLP over HTTP), or to `exporter` when given (tests)."""
    if not settings.otel_enabled:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": f"rebond-{service}"}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_endpoint))
        )
    return provider


@contextmanager
def _in_span(span: Span, **context: str) -> Iterator[None]:
    token = _trace.set(span.parent)
    try:
        with structlog.contextvars.bound_contextvars(
            trace_id=span.parent.trace_id, span_id=span.parent.span_id, **context
        ):
            yield
    finally:
        _trace.reset(token)


class Observability:
    """One per app: its metrics registry, tracer and Kafka middlewares."""

    def __init__(
        self, service: str, settings: OtelSettings, exporter: SpanExporter | None = None
    ) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.tracer = Tracer(tracer_provider(settings, service, exporter), service)
        self.publish_hooks: list[PublishHook] = []
        self._brokers: list[KafkaBroker] = []
        self._links: list[KafkaLink] = []
        self.registry.register(_KafkaLinkCollector(self._links))
        self._prometheus = KafkaPrometheusMiddleware(
            registry=self.registry, app_name=f"rebond-{service}"
        )
        self.http_requests = Counter(
            "rebond_http_requests_total", "HTTP requests by route template, method and status.",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.http_latency = Histogram(
            "rebond_http_request_duration_seconds", "HTTP request latency by route template.",
            ["route", "method"], registry=self.registry,
        )  # fmt: skip
        self.failed = Counter(
            "rebond_messages_failed_total",
            "Consumed records whose handling raised (they are re-read, not committed).",
            ["topic"], registry=self.registry,
        )  # fmt: skip
        self.dead_lettered = Counter(
            "rebond_messages_dead_lettered_total",
            "Consumed records sent to this service's dead-letter topic, by the topic read.",
            ["topic"], registry=self.registry,
        )  # fmt: skip
        self.lag = Gauge(
            "rebond_consumer_lag",
            "Records not yet consumed: end offset minus the consumer's position.",
            ["group", "topic", "partition"], registry=self.registry,
        )  # fmt: skip

    # --- Kafka ---------------------------------------------------------------------------

    def instrument(self, broker: B) -> B:
        """Trace, log context and metrics on every record `broker` consumes or publishes."""
        broker.add_middleware(self._prometheus)
        broker.insert_middleware(self._middleware)  # outermost: the context wraps everything
        self._brokers.append(broker)
        return broker

    @contextmanager
    def record_scope(self, record: Any) -> Iterator[None]:
        """The span and log context of one consumed record (its `traceparent` continued, its
        topic, reference and event id bound), counting it failed if an exception escapes.
        Single-record handlers get it from the middleware; a batch handler enters it per record."""
        headers = {name: value.decode("utf-8", "replace") for name, value in record.headers}
        bound = {
            "topic": record.topic,
            "reference": headers.get("ce_correlationid"),
            "event_id": headers.get("ce_id"),
        }
        with (
            self.tracer.span(f"{record.topic} process", from_headers(headers), SpanKind.CONSUMER) as span,
            _in_span(span, **{k: v for k, v in bound.items() if v is not None}),
        ):  # fmt: skip
            span.set("messaging.destination.name", record.topic)
            span.set("messaging.kafka.partition", record.partition)
            token = _consumed_topic.set(record.topic)
            try:
                yield
            except Exception:
                self.failed.labels(record.topic).inc()
                raise
            finally:
                _consumed_topic.reset(token)

    def watch_kafka(self, link: KafkaLink) -> None:
        """`rebond_kafka_reachable`, `rebond_kafka_outages_total` and
        `rebond_kafka_outage_seconds_total` from `link`, read at each scrape (the seconds
        include the outage going on, so an alert sees it grow before it ends)."""
        self._links.append(link)

    def _middleware(self, msg: Any, /, *, context: Any) -> "KafkaObservability":
        return KafkaObservability(msg, context=context, observability=self)

    async def refresh_lag(self, timeout_s: float = 2.0) -> None:
        """Lag per assigned partition of every consumer of the instrumented brokers. None while
        Kafka is down: asking would wait `timeout_s` per consumer (a dozen in the notifier), and
        the scrape, which says that Kafka is down, would time out instead."""
        self.lag.clear()
        if any(link.down for link in self._links):
            return
        for broker in self._brokers:
            for subscriber in broker.subscribers:
                consumers = getattr(subscriber, "consumer_subgroup", None) or [
                    getattr(subscriber, "consumer", None)
                ]
                for consumer in consumers:
                    if consumer is None or not consumer.assignment():
                        continue
                    try:
                        async with asyncio.timeout(timeout_s):
                            await self._consumer_lag(consumer)
                    except Exception as error:  # timeout, broker gone: a scrape must still answer
                        log.warning("lag_unknown", error=type(error).__name__)

    async def _consumer_lag(self, consumer: Any) -> None:
        assigned = list(consumer.assignment())
        ends = await consumer.end_offsets(assigned)
        group = getattr(consumer, "_group_id", None) or ""
        for tp in assigned:
            position = await consumer.position(tp)
            self.lag.labels(group, tp.topic, str(tp.partition)).set(max(0, ends[tp] - position))

    # --- HTTP ----------------------------------------------------------------------------

    def install(self, app: Starlette) -> None:
        """`GET /metrics`, and the trace, log context and metrics of every request."""

        async def metrics(_: Request) -> Response:
            await self.refresh_lag()
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        app.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
        app.add_middleware(HttpObservability, observability=self)


class _KafkaLinkCollector(Collector):
    """The Kafka series, from the links watched (none yet: the families without a value)."""

    def __init__(self, links: list[KafkaLink]) -> None:
        self.links = links

    def collect(self) -> Iterable[Metric]:
        reachable = GaugeMetricFamily(
            "rebond_kafka_reachable",
            "1 while this service reaches Kafka, 0 during an outage (no client reaches a broker).",
        )
        outages = CounterMetricFamily(
            "rebond_kafka_outages",
            "Kafka outages this service went through (each begins when no client reaches a broker).",
        )
        seconds = CounterMetricFamily(
            "rebond_kafka_outage_seconds",
            "Seconds this service could not reach Kafka, the outage going on included.",
        )
        if self.links:
            reachable.add_metric([], 0 if any(link.down for link in self.links) else 1)
            outages.add_metric([], sum(link.outages for link in self.links))
            seconds.add_metric([], sum(link.outage_seconds() for link in self.links))
        yield from (reachable, outages, seconds)


class KafkaObservability(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: Any, observability: Observability) -> None:
        super().__init__(msg, context=context)
        self.obs = observability

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        record = msg.raw_message
        # A batch (a tuple from aiokafka, a list from FastStream's in-memory test broker): the
        # handler enters `record_scope` per record.
        if isinstance(record, tuple | list):
            return await call_next(msg)
        with self.obs.record_scope(record):
            return await call_next(msg)

    async def publish_scope(self, call_next: Any, cmd: Any) -> Any:
        headers: dict[str, Any] = dict(cmd.headers or {})
        if not any(name.lower() == HEADER for name in headers):
            current = _trace.get() or TraceParent.start()  # nothing in progress: a new trace
            cmd.headers = {**headers, HEADER: current.header()}
        result = await call_next(cmd)
        topic = cmd.destination
        if topic.startswith("deadletter."):
            self.obs.dead_lettered.labels(_consumed_topic.get() or "unknown").inc()
        for hook in self.obs.publish_hooks:
            hook(topic, cmd.body)
        return result


class HttpObservability:
    """Pure ASGI middleware (no extra task): span, log context, metrics per request."""

    def __init__(self, app: ASGIApp, observability: Observability) -> None:
        self.app = app
        self.obs = observability

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        parent = from_headers([(k.decode("latin-1"), v) for k, v in scope["headers"]])
        status = 500
        started = time.perf_counter()
        bound = {"http_method": method}
        if match := _REFERENCE.search(scope["path"]):  # e.g. /v1/submissions/{reference}
            bound["reference"] = match.group(0)
        with (
            self.obs.tracer.span(f"{method}", parent, SpanKind.SERVER) as span,
            _in_span(span, **bound),
        ):

            async def send_with_trace(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [
                        *message.get("headers", []),
                        (HEADER.encode(), span.parent.header().encode()),
                    ]
                await send(message)

            try:
                await self.app(scope, receive, send_with_trace)
            finally:
                # The template the router matched (set in the scope it shares), never the path.
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                span.rename(f"{method} {route}")
                span.set("http.route", route)
                span.set("http.response.status_code", status)
                self.obs.http_requests.labels(route, method, str(status)).inc()
                self.obs.http_latency.labels(route, method).observe(time.perf_counter() - started)
