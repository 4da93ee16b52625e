"""Router's observability: the shared plumbing of `rebond_observability` (trace and log
context, `/metrics`), named for this service, plus its own series."""

from collections.abc import Callable

from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import Counter

from rebond_contracts.payloads import RoutingDecisionV1
from rebond_observability import Observability as SharedObservability
from rebond_observability import OtelSettings


class Observability(SharedObservability):
    """Metrics registry, tracer and middlewares of the router service."""

    def __init__(self, settings: OtelSettings, exporter: SpanExporter | None = None) -> None:
        super().__init__("router", settings, exporter)


# --- the router's own series ---------------------------------------------------------------


def count_decisions(obs: Observability) -> Callable[[RoutingDecisionV1], None]:
    """`rebond_router_decisions_total{rule_set_version, association}`; returns what counts a
    decision (the router calls it once the decision is committed with its outbox).
    `association="none"`: nobody suits, or nothing may be shared."""
    decisions = Counter(
        "rebond_router_decisions_total",
        "Routing decisions made, by rule-set version and association chosen.",
        ["rule_set_version", "association"], registry=obs.registry,
    )  # fmt: skip

    def count(decision: RoutingDecisionV1) -> None:
        chosen = decision.referral.association_id if decision.referral else decision.primary
        decisions.labels(decision.rule_set_version, chosen.value if chosen else "none").inc()

    return count
