"""Notifier's observability: the shared plumbing of `rebond_observability` (trace and log
context, `/metrics`), named for this service, plus its own series."""

import json
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import Counter

from rebond_contracts.associations import AssociationId
from rebond_contracts.topics import DELIVERIES, referrals
from rebond_observability import Observability as SharedObservability
from rebond_observability import OtelSettings


class Observability(SharedObservability):
    """Metrics registry, tracer and middlewares of the notifier service."""

    def __init__(self, settings: OtelSettings, exporter: SpanExporter | None = None) -> None:
        super().__init__("notifier", settings, exporter)


# --- the notifier's own series -------------------------------------------------------------

_REFERRAL_TOPICS = {referrals(a).name: a.value for a in AssociationId}


def count_referrals_and_deliveries(obs: Observability) -> None:
    """`rebond_notifier_referrals_published_total{association}` and
    `rebond_notifier_deliveries_total{channel, outcome}` (e-mails and webhooks: sent, failed,
    dead_lettered), from what the notifier publishes."""
    referrals_published = Counter(
        "rebond_notifier_referrals_published_total",
        "Referrals published to an association's topic, by association.",
        ["association"], registry=obs.registry,
    )  # fmt: skip
    deliveries = Counter(
        "rebond_notifier_deliveries_total",
        "Delivery outcomes (e-mail, webhook) by channel and outcome.",
        ["channel", "outcome"], registry=obs.registry,
    )  # fmt: skip

    def hook(topic: str, body: Any) -> None:
        if topic in _REFERRAL_TOPICS:
            referrals_published.labels(_REFERRAL_TOPICS[topic]).inc()
        elif topic == DELIVERIES.name:
            try:
                data = json.loads(body)
            except (TypeError, ValueError):
                return
            deliveries.labels(str(data.get("channel")), str(data.get("outcome"))).inc()

    obs.publish_hooks.append(hook)
