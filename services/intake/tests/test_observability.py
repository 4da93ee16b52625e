"""Intake's traces, log context and /metrics: unit (no broker) and against the real broker."""

import uuid
from datetime import UTC, datetime

import httpx
import pytest
import structlog
from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import RoutingOutcomeV1
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_contracts.topics import OUTCOMES, QUESTIONNAIRES
from rebond_contracts.tracing import TraceParent
from rebond_intake.app import build, create_app
from rebond_intake.consumer import CONSUMED
from rebond_intake.settings import IntakeSettings
from rebond_kafka.testing import move_group_to_end
from rebond_testing import TopicProbe, until_async

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


def test_traceparent_parsing_rejects_malformed_values() -> None:
    """Only well-formed, non-zero W3C traceparent values are continued."""
    assert TraceParent.parse(PARENT) == TraceParent(TRACE, "00f067aa0ba902b7", True)
    for bad in (
        None,
        "",
        "garbage",
        f"ff-{TRACE}-00f067aa0ba902b7-01",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
    ):
        assert TraceParent.parse(bad) is None
    child = TraceParent.parse(PARENT).child()  # type: ignore[union-attr]
    assert child.trace_id == TRACE and child.span_id != "00f067aa0ba902b7"


@pytest.mark.parametrize("enabled", [True, False])
def test_otel_exporter_is_switched_by_settings(publisher, store, enabled: bool) -> None:
    """INTAKE_OTEL_ENABLED exports a server span continuing the caller's trace; off, nothing is
    exported, yet the response still carries the continued traceparent."""
    exporter = InMemorySpanExporter()
    settings = IntakeSettings(otel_enabled=enabled, rate_limit_per_minute=0)
    with TestClient(
        build(settings, publisher=publisher, store=store, span_exporter=exporter).web
    ) as client:
        reply = client.get(
            "/v1/submissions/RB-0000-0000-0000-0000", headers={"traceparent": PARENT}
        )
    answered = TraceParent.parse(reply.headers["traceparent"])
    assert answered is not None and answered.trace_id == TRACE
    spans = exporter.get_finished_spans()
    if not enabled:
        assert spans == ()
        return
    (span,) = spans
    assert span.name == "GET /v1/submissions/{reference}"
    assert format(span.context.trace_id, "032x") == TRACE
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"  # type: ignore[union-attr]
    assert format(span.context.span_id, "016x") == answered.span_id


def test_metrics_label_routes_not_references(publisher, store) -> None:
    """HTTP series are labelled by route template: the reference asked for never shows."""
    settings = IntakeSettings(rate_limit_per_minute=0)
    with TestClient(build(settings, publisher=publisher, store=store).web) as client:
        client.get("/v1/submissions/RB-7K3M-Q9XA-2DFE-W8NB")
        text = client.get("/metrics").text
    assert (
        'rebond_http_requests_total{method="GET",route="/v1/submissions/{reference}",status="404"} 1.0'
        in text
    )
    assert "RB-7K3M" not in text


@pytest.mark.kafka
def _samples(text: str, name: str) -> dict[str, float]:
    """The values of the series `name` of intake's /metrics, by handler."""
    return {
        sample.labels["handler"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and sample.labels.get("app_name") == "rebond-intake"
    }


async def test_trace_logs_and_metrics_on_the_real_broker(kafka_bootstrap, tmp_path) -> None:
    """A submission's traceparent reaches its questionnaire record; a consumed decision is
    logged with its reference, event id and trace id; /metrics then shows the HTTP, consumed,
    published, dead-lettered and lag series, with no reference in them."""
    group = f"intake-obs-{uuid.uuid4().hex[:8]}"
    settings = IntakeSettings(
        kafka_bootstrap_servers=kafka_bootstrap, data_dir=tmp_path, group_id=group,
        rate_limit_per_minute=0,
    )  # fmt: skip
    # From the end of its topics: older tests' records would fill its batches (and label them).
    await move_group_to_end(
        kafka_bootstrap, group, [QUESTIONNAIRES.name, *(topic.name for topic in CONSUMED)]
    )
    app = create_app(settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        async with (
            TopicProbe(kafka_bootstrap, [QUESTIONNAIRES.name]) as questionnaires,
            app.router.lifespan_context(app),
        ):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:

                async def ready() -> bool:
                    return bool((await client.get("/readyz")).status_code == 200)

                assert await until_async(ready, within_s=30, every_s=0.2), "intake never connected"
                reply = await client.post(
                    "/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers={"traceparent": PARENT}
                )
                assert reply.status_code == 202, reply.text
                reference = reply.json()["reference"]

                mine = await questionnaires.wait_for(reference, within_s=10)
                assert mine, "the questionnaire was never published"
                sent = TraceParent.parse(dict(mine[0].headers)["traceparent"])
                assert sent is not None and sent.trace_id == TRACE

                decision = RoutingOutcomeV1(
                    decision_id=uuid.uuid4(), reference=reference,
                    primary=AssociationId.SOIXANTE_MILLE_REBONDS, decided_at=datetime.now(UTC),
                )  # fmt: skip
                env = OUTCOMES.envelope(
                    decision, subject=reference, correlationid=reference,
                    id=str(decision.decision_id),
                )  # fmt: skip
                other = "0af7651916cd43dd8448eb211c80319c"
                headers = [(k, v.encode()) for k, v in env.kafka_headers().items()]
                headers.append(("traceparent", f"00-{other}-b7ad6b7169203331-01".encode()))
                with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
                    await producer.send_and_wait(
                        OUTCOMES.name, env.kafka_value(), key=reference.encode(), headers=headers
                    )
                    await producer.send_and_wait(
                        OUTCOMES.name, b"not json", key=reference.encode(), headers=[]
                    )
                    stored = await until_async(
                        lambda: [
                            line for line in logs
                            if line["event"] == "status_stored" and line.get("event_id") == env.id
                        ],
                        within_s=20, every_s=0.2,
                    )  # fmt: skip
                assert stored, "the decision was never stored"
                assert stored[0]["reference"] == reference
                assert stored[0]["trace_id"] == other
                assert stored[0]["topic"] == OUTCOMES.name
                text = (await client.get("/metrics")).text
    finally:
        await producer.stop()

    assert 'route="/v1/submissions",status="202"' in text
    assert (
        'rebond_http_request_duration_seconds_count{method="POST",route="/v1/submissions"}' in text
    )
    assert (
        f'faststream_published_messages_total{{app_name="rebond-intake",broker="kafka",destination="{QUESTIONNAIRES.name}",status="success"}}'
        in text
    )
    # Intake reads its topics in batches, and FastStream labels a batch with its first record's
    # topic: the questionnaire read back and the outcomes may come in one batch or several.
    received = _samples(text, "faststream_received_messages_total")
    handled = _samples(text, "faststream_received_processed_messages_duration_seconds_count")
    status_topics = {QUESTIONNAIRES.name, OUTCOMES.name}
    assert sum(v for handler, v in received.items() if handler in status_topics) >= 3
    assert sum(v for handler, v in handled.items() if handler in status_topics) >= 1
    assert f'rebond_messages_dead_lettered_total{{topic="{OUTCOMES.name}"}}' in text
    assert (
        f'rebond_consumer_lag{{group="{settings.group_id}",partition="0",topic="{OUTCOMES.name}"}}'
        in text
    )
    assert reference not in text
