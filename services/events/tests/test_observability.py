"""The events service's trace propagation and /metrics against the real broker."""

import uuid

import pytest

from rebond_contracts.topics import INVITATIONS, INVITEES
from rebond_contracts.tracing import TraceParent
from rebond_testing import new_reference, until_async

from .conftest import settings_for
from .test_kafka import collect, conference_in_bordeaux, connected, invitee, publish

pytestmark = pytest.mark.kafka
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_invitation_continues_the_trace_and_metrics_show_it(
    kafka_bootstrap: str, sqlite_url: str
) -> None:
    """An invitee's traceparent is continued on the invitation it gives; /metrics then shows
    the HTTP route, the invitee consumed, the invitation published, the dead letter of an
    unreadable record and the group's lag, with no reference in any label."""
    group = f"events-obs-{uuid.uuid4().hex[:8]}"
    # A slow background relay: the invitation is published by the handler, in the trace.
    settings = settings_for(
        sqlite_url, kafka_bootstrap_servers=kafka_bootstrap, group_id=group,
        outbox_interval_s=120,
    )  # fmt: skip
    async with connected(settings) as client:
        await conference_in_bordeaux(client)
        reference = new_reference()
        key, value, headers = invitee(reference, f"claire-{reference}@example.org")
        headers["traceparent"] = f"00-{TRACE}-00f067aa0ba902b7-01"
        await publish(kafka_bootstrap, [(key, value, headers), (key, b"not json", {})])
        found = await collect(kafka_bootstrap, INVITATIONS.name, reference, bool)
        assert found, "no invitation"
        sent = TraceParent.parse(dict(found[0].headers)["traceparent"])
        assert sent is not None and sent.trace_id == TRACE

        async def metrics_once_dead_lettered() -> str:
            text = (await client.get("/metrics")).text
            return text if "rebond_messages_dead_lettered_total{" in text else ""

        text = await until_async(metrics_once_dead_lettered, within_s=10, every_s=0.25)
        text = text or (await client.get("/metrics")).text
    assert 'rebond_http_requests_total{method="POST",route="/v1/events",status="201"} 1.0' in text
    assert f'handler="{INVITEES.name}"' in text
    assert f'destination="{INVITATIONS.name}",status="success"' in text
    assert f'rebond_messages_dead_lettered_total{{topic="{INVITEES.name}"}}' in text
    assert f'rebond_consumer_lag{{group="{group}",partition="0",topic="{INVITEES.name}"}}' in text
    assert reference not in text
