"""Observability: trace context, log context and Prometheus metrics, for HTTP and for Kafka.

- Traces are OpenTelemetry's (`rebond_observability.tracing`: the SDK, exporting only when
  switched on, `<SVC>_OTEL_ENABLED`; the ids and their propagation are the same either way).
- Every HTTP request runs in a server span continuing the `traceparent` that came in (or
  starting a trace), answered in the response's own `traceparent`. A consumed record's span
  continues the record's `traceparent`, and every record published carries the span in
  progress (a new trace when nothing is in progress, e.g. a background relay); a record
  published with a `traceparent` of its own (an outbox row written while its cause was
  handled, a dead letter) stays in that trace. With export on, FastStream's telemetry
  middleware (`KafkaTelemetryMiddleware`) makes Kafka's spans; with export off, nothing would
  receive them, and `KafkaObservability` carries the trace on at a fraction of the cost.
- The trace and span ids, the route, and for a record its reference (`ce_correlationid`),
  event id (`ce_id`) and topic are bound in structlog's context variables, so every log line
  says them. A batch handler enters `record_scope` per record: each record of a batch then has
  its own span in its own trace, and what it causes is published in that trace.
- `GET /metrics` (Prometheus text): HTTP requests by route template, method and status, and
  their latency; FastStream's per-topic consumed/published/processing-latency series; records
  failed and dead-lettered per topic; consumer lag per group, topic and partition (refreshed on
  each scrape); whether Kafka is reached, its outages and their seconds (`watch_kafka`). Labels
  never hold a reference or anything a person wrote.

Process plumbing shared by the services (it carries no event, schema or topic: those stay in
`contracts/`); each service names itself (`Observability("router", settings)`) and adds its own
series in its `observability.py`.
"""

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import structlog
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import Span, SpanKind
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
from rebond_contracts.tracing import HEADER
from rebond_kafka.outage import KafkaLink
from rebond_observability.tracing import (
    PROPAGATOR,
    OtelSettings,
    current_trace,
    extract,
    logged,
    traceparent,
    tracer_provider,
)

__all__ = ["Observability", "OtelSettings", "current_trace", "tracer_provider"]

log = structlog.get_logger(__name__)
_REFERENCE = re.compile(REFERENCE_PATTERN.strip("^$"))
_HTTP_TRACE_HEADERS = frozenset({HEADER.encode(), b"tracestate"})

#: The record whose scope is entered (a nested `record_scope` of the same record adds nothing).
_scoped_record: ContextVar[object | None] = ContextVar("rebond_scoped_record", default=None)
_consumed_topic: ContextVar[str | None] = ContextVar("rebond_consumed_topic", default=None)
B = TypeVar("B", bound=KafkaBroker)
PublishHook = Callable[[str, Any], None]


class Observability:
    """One per app: its metrics registry, tracer provider and Kafka middlewares."""

    def __init__(
        self, service: str, settings: OtelSettings, exporter: SpanExporter | None = None
    ) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.provider = tracer_provider(settings, service, exporter)
        self.tracer = self.provider.get_tracer(f"rebond.{service}")
        self.publish_hooks: list[PublishHook] = []
        self._brokers: list[KafkaBroker] = []
        self._links: list[KafkaLink] = []
        self.registry.register(_KafkaLinkCollector(self._links))
        self._prometheus = KafkaPrometheusMiddleware(
            registry=self.registry, app_name=f"rebond-{service}"
        )
        #: FastStream's telemetry middleware, only while spans are exported. It costs about
        #: 90 µs of CPU per record published and read back (a span per step, baggage and
        #: context bookkeeping; measured with FastStream's test broker, 400 µs without it, 490
        #: with it), which is worth it for spans someone receives. Export off, there is nothing
        #: for it to do but carry the trace on, and `KafkaObservability` does that itself: one
        #: unrecorded span per record read, and the span in progress written on each record
        #: published (about what the hand-written tracer cost).
        #: Its OpenTelemetry metrics go to the no-op provider: the same series are on /metrics
        #: already (Prometheus middleware), and recording both would cost twice.
        self._telemetry = (
            KafkaTelemetryMiddleware(
                tracer_provider=self.provider,
                meter_provider=NoOpMeterProvider(),
                include_messages_counters=False,
            )
            if settings.otel_enabled
            else None
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
        """Trace, log context and metrics on every record `broker` consumes or publishes. The
        middlewares, outermost first: with export on, `KeepTrace` (a record published with a
        `traceparent` of its own stays in that trace) and FastStream's telemetry (spans of
        consuming and publishing; `traceparent` written on every record); then
        `KafkaObservability` (the consumed record's log context and failures, and with export
        off its span and the `traceparent` of what is published; dead letters and publish
        hooks), and FastStream's Prometheus series."""
        broker.insert_middleware(self._middleware)  # each insert goes outside the previous
        if self._telemetry is not None:
            broker.insert_middleware(self._telemetry)
            broker.insert_middleware(KeepTrace)
        broker.add_middleware(self._prometheus)
        self._brokers.append(broker)
        return broker

    @contextmanager
    def record_scope(self, record: Any) -> Iterator[None]:
        """The span and log context of one consumed record (its `traceparent` continued, its
        topic, reference and event id bound), counting it failed if an exception escapes.
        A batch handler enters it per record; a single-record handler is already in it
        (FastStream's span, `KafkaObservability`), and entering it again adds nothing."""
        if _scoped_record.get() is record:
            yield
            return
        carrier, bound = _read_headers(record)
        with (
            self.tracer.start_as_current_span(
                f"{record.topic} process", context=PROPAGATOR.extract(carrier),
                kind=SpanKind.CONSUMER,
                attributes={"messaging.destination.name": record.topic,
                            "messaging.kafka.partition": record.partition},
            ) as span,
            self._in_record(record, span, bound),
        ):  # fmt: skip
            yield

    @contextmanager
    def _in_record(
        self, record: Any, span: Span, bound: dict[str, str] | None = None
    ) -> Iterator[None]:
        """Inside `span`, the span of `record`: its log context, and its failures counted."""
        if bound is None:
            _, bound = _read_headers(record)
        scoped = _scoped_record.set(record)
        topic = _consumed_topic.set(record.topic)
        try:
            with logged(span, topic=record.topic, **bound):
                yield
        except Exception:
            self.failed.labels(record.topic).inc()
            raise
        finally:
            _consumed_topic.reset(topic)
            _scoped_record.reset(scoped)

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

    async def close(self) -> None:
        """Send the spans still buffered, then stop exporting (the service's last step)."""
        await asyncio.to_thread(self.provider.shutdown)


def _read_headers(record: Any) -> tuple[dict[str, str], dict[str, str]]:
    """From a record's headers, in one pass: its trace context (for the propagator) and its
    reference and event id (for the log context)."""
    carrier: dict[str, str] = {}
    bound: dict[str, str] = {}
    for name, value in record.headers:
        if name == HEADER or name == "tracestate":
            carrier[name] = value.decode("latin-1")
        elif name == "ce_correlationid":
            bound["reference"] = value.decode("utf-8", "replace")
        elif name == "ce_id":
            bound["event_id"] = value.decode("utf-8", "replace")
    return carrier, bound


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


class KeepTrace(BaseMiddleware):
    """A record published with a `traceparent` of its own continues that trace: an outbox row
    written while its cause was handled (and published later, by a relay, outside any span),
    a dead letter carrying the failed record's. FastStream's telemetry middleware, inside this
    one, would otherwise write the span in progress over it."""

    async def publish_scope(self, call_next: Any, cmd: Any) -> Any:
        headers = cmd.headers
        if not headers or HEADER not in headers:
            return await call_next(cmd)
        token = otel_context.attach(extract(headers))
        try:
            return await call_next(cmd)
        finally:
            otel_context.detach(token)


class KafkaObservability(BaseMiddleware):
    """A consumed record's log context and failures, inside FastStream's span of it (export
    on) or a span of its own (export off); on publishing, with export off, the `traceparent` of
    the span in progress (a new trace when none is) unless the record has one; dead letters
    counted by the topic read, and the service's publish hooks."""

    def __init__(self, msg: Any, /, *, context: Any, observability: Observability) -> None:
        super().__init__(msg, context=context)
        self.obs = observability

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        record = msg.raw_message
        # A batch (a tuple from aiokafka, a list from FastStream's in-memory test broker): the
        # handler enters `record_scope` per record.
        if isinstance(record, tuple | list):
            return await call_next(msg)
        scope = (
            self.obs.record_scope(record)
            if self.obs._telemetry is None
            else self.obs._in_record(record, trace.get_current_span())
        )
        with scope:
            return await call_next(msg)

    async def publish_scope(self, call_next: Any, cmd: Any) -> Any:
        if self.obs._telemetry is None and HEADER not in (cmd.headers or {}):
            span = trace.get_current_span()
            if not span.get_span_context().is_valid:  # nothing in progress: a new trace
                span = self.obs.tracer.start_span(
                    f"{cmd.destination} publish", kind=SpanKind.PRODUCER
                )
            cmd.headers = {**(cmd.headers or {}), HEADER: traceparent(span)}
        result = await call_next(cmd)
        topic = cmd.destination
        if topic.startswith("deadletter."):
            self.obs.dead_lettered.labels(_consumed_topic.get() or "unknown").inc()
        for hook in self.obs.publish_hooks:
            hook(topic, cmd.body)
        return result


class HttpObservability:
    """Pure ASGI middleware (no extra task): span, log context, metrics per request. Not
    OpenTelemetry's ASGI instrumentation: this one also labels the Prometheus series by route
    template and answers the request's `traceparent`, which that one does not, and it makes one
    span per request where that one adds two per response (start and body)."""

    def __init__(self, app: ASGIApp, observability: Observability) -> None:
        self.app = app
        self.obs = observability

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        carrier = {
            name.decode(): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _HTTP_TRACE_HEADERS
        }
        status = 500
        started = time.perf_counter()
        bound = {"http_method": method}
        if match := _REFERENCE.search(scope["path"]):  # e.g. /v1/submissions/{reference}
            bound["reference"] = match.group(0)
        with (
            self.obs.tracer.start_as_current_span(
                method, context=PROPAGATOR.extract(carrier), kind=SpanKind.SERVER
            ) as span,
            logged(span, **bound),
        ):
            answered = traceparent(span).encode()

            async def send_with_trace(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", []), (b"traceparent", answered)]
                await send(message)

            try:
                await self.app(scope, receive, send_with_trace)
            finally:
                # The template the router matched (set in the scope it shares), never the path.
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                self.obs.http_requests.labels(route, method, str(status)).inc()
                self.obs.http_latency.labels(route, method).observe(time.perf_counter() - started)
