"""Intake's observability: the shared plumbing of `rebond_observability` (trace and log
context, `/metrics`), named for this service."""

from opentelemetry.sdk.trace.export import SpanExporter

from rebond_observability import Observability as SharedObservability
from rebond_observability import OtelSettings


class Observability(SharedObservability):
    """Metrics registry, tracer and middlewares of the intake service."""

    def __init__(self, settings: OtelSettings, exporter: SpanExporter | None = None) -> None:
        super().__init__("intake", settings, exporter)
