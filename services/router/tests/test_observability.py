"""The router's trace propagation, log context and /metrics against the real broker."""

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from rebond_contracts.topics import DECISIONS, QUESTIONNAIRES
from rebond_contracts.tracing import TraceParent
from rebond_kafka.testing import move_group_to_end
from rebond_router.app import create_app
from rebond_router.settings import RouterSettings
from rebond_testing import TopicProbe
from rebond_testing.serving import ready_within

from .conftest import submitted
from .test_kafka import INPUTS, new_reference

pytestmark = pytest.mark.kafka
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_decision_continues_the_trace_and_metrics_show_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A questionnaire's traceparent is continued on its decision; /metrics then counts the
    decision by rule-set version, the record consumed and published, the dead letter of an
    unreadable record, and the group's lag, with no reference in any label."""
    group = f"router-obs-{uuid.uuid4().hex[:8]}"
    await move_group_to_end(kafka_bootstrap, group, INPUTS)
    settings = RouterSettings(
        kafka_bootstrap_servers=kafka_bootstrap, group_id=group,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/router.sqlite3",
    )  # fmt: skip
    app = create_app(settings)
    reference = new_reference()
    event = QUESTIONNAIRES.envelope(
        submitted(reference), subject=reference, correlationid=reference
    )
    headers = [(k, v.encode()) for k, v in event.kafka_headers().items()]
    headers.append(("traceparent", f"00-{TRACE}-00f067aa0ba902b7-01".encode()))
    async with TopicProbe(kafka_bootstrap, [DECISIONS.name]) as decisions:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://router"
                ) as client:
                    assert await ready_within(client), "the router never connected"
                    await producer.send_and_wait(
                        QUESTIONNAIRES.name, event.kafka_value(), key=reference.encode(),
                        headers=headers,
                    )  # fmt: skip
                    await producer.send_and_wait(
                        QUESTIONNAIRES.name, b"not json", key=reference.encode(), headers=[]
                    )
                    found = await decisions.wait_for(reference, 1, within_s=20)
                    assert found, "no decision"
                    sent = TraceParent.parse(dict(found[0].headers)["traceparent"])
                    assert sent is not None and sent.trace_id == TRACE
                    deadline = time.monotonic() + 10
                    while True:
                        text = (await client.get("/metrics")).text
                        if (
                            "rebond_messages_dead_lettered_total{" in text
                            or time.monotonic() > deadline
                        ):
                            break
                        await asyncio.sleep(0.2)
        finally:
            await producer.stop()
    assert 'rebond_router_decisions_total{association="60000-rebonds",rule_set_version="' in text
    assert f'rebond_messages_dead_lettered_total{{topic="{QUESTIONNAIRES.name}"}} 1.0' in text
    assert f'handler="{QUESTIONNAIRES.name}"' in text
    assert f'destination="{DECISIONS.name}",status="success"' in text
    assert (
        f'rebond_consumer_lag{{group="{group}",partition="0",topic="{QUESTIONNAIRES.name}"}}'
        in text
    )
    assert 'rebond_http_requests_total{method="GET",route="/readyz",status="200"}' in text
    assert reference not in text
