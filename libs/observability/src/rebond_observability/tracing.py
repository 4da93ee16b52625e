"""Traces with the OpenTelemetry SDK: the same ids whether spans are exported or not.

- A service always has an SDK `TracerProvider`, so every span has real ids: a request or record
  that came with a `traceparent` is continued in its trace, anything else starts one, and what
  the service publishes carries it on.
- Export off (the default): the sampler records nothing (`ALWAYS_OFF`), yet each span still gets
  its ids. Measured here: 6.6 µs per span against 17 µs for a recorded one with nothing to
  export it to, and 3.5 µs for OpenTelemetry's no-op tracer, which has no ids to propagate. The
  `traceparent` then says "not sampled" (flags `00`): true, nothing was recorded.
- Export on (`<SVC>_OTEL_ENABLED`): every span is recorded, including under a caller that did
  not record its own (its `traceparent` says "not sampled" because its export is off, not
  because someone decided to drop the trace), and sent to `otel_endpoint` with OTLP over HTTP
  in batches, or to the exporter given (tests).
- `traceparent` (and `tracestate`) are read with OpenTelemetry's W3C propagator; `traceparent`
  is written from the span's ids (`traceparent()`).
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from rebond_contracts.tracing import HEADER, TraceParent

PROPAGATOR = TraceContextTextMapPropagator()
#: The headers the propagator reads; nothing else of a request or record is looked at.
TRACE_HEADERS = frozenset({HEADER, "tracestate"})


class OtelSettings(Protocol):
    otel_enabled: bool
    otel_endpoint: str


def tracer_provider(
    settings: OtelSettings, service: str, exporter: SpanExporter | None = None
) -> TracerProvider:
    """The service's provider: recording nothing when export is off, else exporting to
    `otel_endpoint` (OTLP over HTTP), or to `exporter` when given (tests)."""
    resource = Resource.create({"service.name": f"rebond-{service}"})
    if not settings.otel_enabled:
        return TracerProvider(resource=resource, sampler=ALWAYS_OFF, shutdown_on_exit=False)
    provider = TracerProvider(
        resource=resource,
        sampler=ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON),
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_endpoint))
        )
    return provider


def extract(headers: Mapping[str, Any]) -> Context:
    """The trace context that `headers` (a record's about to be published) carry; empty when
    none or malformed (a span started in it then starts a trace)."""
    carrier = {name: str(value) for name, value in headers.items() if name in TRACE_HEADERS}
    return PROPAGATOR.extract(carrier) if carrier else Context()


def traceparent(span: Span) -> str:
    """The `traceparent` header naming `span` (W3C version 00), as the propagator writes it.
    Formatted here because the propagator's `inject` takes 10 µs a call (a context made and
    read back), this 0.5 µs, and it runs for every record published with export off."""
    ids = span.get_span_context()
    return f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{ids.trace_flags:02x}"


def current_trace() -> TraceParent | None:
    """The span in progress (an HTTP request, a consumed record, a publish), if any."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return TraceParent(
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
        context.trace_flags.sampled,
    )


@contextmanager
def logged(span: Span, **context: str) -> Iterator[None]:
    """Every log line inside says `span`'s trace and span ids, and `context`."""
    ids = span.get_span_context()
    with structlog.contextvars.bound_contextvars(
        trace_id=format(ids.trace_id, "032x"), span_id=format(ids.span_id, "016x"), **context
    ):
        yield
