"""Router's observability: the shared plumbing of `rebond_observability` (trace and log
context, `/metrics`), named for this service, plus its own series."""

import json
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import Counter

from rebond_contracts.topics import DECISIONS
from rebond_observability import Observability as SharedObservability
from rebond_observability import OtelSettings


class Observability(SharedObservability):
    """Metrics registry, tracer and middlewares of the router service."""

    def __init__(self, settings: OtelSettings, exporter: SpanExporter | None = None) -> None:
        super().__init__("router", settings, exporter)


# --- the router's own series ---------------------------------------------------------------


def count_decisions(obs: Observability) -> None:
    """`rebond_router_decisions_total{rule_set_version, association}`, from each decision the
    router publishes (`association="none"`: nobody suits, or nothing may be shared)."""
    decisions = Counter(
        "rebond_router_decisions_total",
        "Routing decisions published, by rule-set version and association chosen.",
        ["rule_set_version", "association"], registry=obs.registry,
    )  # fmt: skip

    def hook(topic: str, body: Any) -> None:
        if topic != DECISIONS.name:
            return
        try:
            data = json.loads(body)
        except (TypeError, ValueError):
            return
        chosen = (data.get("referral") or {}).get("association_id") or data.get("primary")
        decisions.labels(str(data.get("rule_set_version")), str(chosen or "none")).inc()

    obs.publish_hooks.append(hook)
