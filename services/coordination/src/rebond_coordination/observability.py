"""Coordination's observability: the shared plumbing (`/metrics`, trace and log context) and
the human queue's own series, for the alert "an urgent case waits more than an hour"."""

from prometheus_client import Gauge

from rebond_coordination.store import Store
from rebond_observability import Observability as SharedObservability
from rebond_observability import OtelSettings
from rebond_sql.types import Clock

URGENT_LIMIT_S = 3600.0


class Observability(SharedObservability):
    def __init__(self, settings: OtelSettings) -> None:
        super().__init__("coordination", settings)
        self.oldest_urgent = Gauge(
            "rebond_coordination_oldest_urgent_wait_seconds",
            "How long the oldest urgent case of the human queue has waited (0: none waits).",
            registry=self.registry,
        )
        self.urgent_over_limit = Gauge(
            "rebond_coordination_urgent_waiting_over_hour",
            "Urgent cases of the human queue waiting for more than an hour.",
            registry=self.registry,
        )

    async def refresh_queue(self, store: Store, clock: Clock) -> None:
        now = clock()
        waits = [(now - since).total_seconds() for since in await store.urgent_waiting_since()]
        self.oldest_urgent.set(max(waits, default=0.0))
        self.urgent_over_limit.set(sum(1 for wait in waits if wait > URGENT_LIMIT_S))
