"""Observability of the running processes: one trace across the pipeline, log context, /metrics."""

import contextlib
import json

import httpx
import pytest

from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_contracts.tracing import TraceParent
from rebond_testing import TopicProbe, headers, until_async

pytestmark = pytest.mark.kafka

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE}-b7ad6b7169203331-01"


def _log_lines(path, event: str) -> list[dict]:
    lines = []
    for raw in path.read_text().splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if line.get("event") == event:
            lines.append(line)
    return lines


async def test_traceparent_follows_a_questionnaire_to_its_referral(
    kafka_bootstrap: str, running_services: dict
) -> None:
    """The traceparent sent to intake is continued on the questionnaire record, the router's
    decision and the notifier's referral; the router's and notifier's log lines of it carry
    the reference, the event id and the trace id."""
    topics = ("questionnaires.completed", "routing.decisions", "referrals.60000-rebonds")
    async with contextlib.AsyncExitStack() as stack:
        probes = [
            await stack.enter_async_context(TopicProbe(kafka_bootstrap, [topic]))
            for topic in topics
        ]
        async with httpx.AsyncClient(base_url=running_services["intake"].url) as client:
            reply = await client.post(
                "/v1/submissions", json=EXAMPLE_QUESTIONNAIRE, headers={"traceparent": PARENT}
            )
        assert reply.status_code == 202, reply.text
        assert TraceParent.parse(reply.headers["traceparent"]).trace_id == TRACE  # type: ignore[union-attr]
        reference = reply.json()["reference"]
        spans = []
        for topic, probe in zip(topics, probes, strict=True):
            records = await probe.wait_for(reference, within_s=15)
            assert records, f"nothing for {reference} on {topic}"
            parent = TraceParent.parse(headers(records[0]).get("traceparent"))
            assert parent is not None and parent.trace_id == TRACE, topic
            spans.append(parent.span_id)
        assert len(set(spans)) == 3  # each service continued the trace with a span of its own

    def logged(service: str, event: str) -> list[dict]:
        lines = _log_lines(running_services[service].log, event)
        return [line for line in lines if line.get("reference") == reference]

    # the notifier logs once the deliveries are recorded
    assert await until_async(
        lambda: logged("router", "decided") and logged("notifier", "referral_published"), 10
    ), "no log line of the decision or the referral"
    decided, published = logged("router", "decided"), logged("notifier", "referral_published")
    for line in (decided[0], published[0]):
        assert line["trace_id"] == TRACE and line["event_id"]
    assert "Claire" not in running_services["router"].log.read_text()


#: What each service's /metrics must show once traffic went through (names and label parts).
EXPECTED = {
    "intake": [
        'rebond_http_requests_total{method="POST",route="/v1/submissions",status="202"}',
        "rebond_http_request_duration_seconds_bucket",
        'destination="questionnaires.completed",status="success"',
        # one batch consumer reads intake's four topics: a batch is labelled with its first
        # record's topic, so which handler label shows depends on how records were batched
        'faststream_received_messages_total{app_name="rebond-intake",broker="kafka",handler="',
        'rebond_consumer_lag{group="rebond-intake",partition="0",topic="routing.outcomes"}',
    ],
    "router": [
        'faststream_received_messages_total{app_name="rebond-router",broker="kafka",handler="questionnaires.completed"}',
        "faststream_received_processed_messages_duration_seconds_bucket",
        'destination="routing.decisions",status="success"',
        'rebond_router_decisions_total{association="60000-rebonds",rule_set_version=',
        'rebond_consumer_lag{group="rebond-router",partition="0",topic="questionnaires.completed"}',
        "# TYPE rebond_messages_dead_lettered_total counter",
        "# TYPE rebond_messages_failed_total counter",
    ],
    "notifier": [
        'faststream_received_messages_total{app_name="rebond-notifier",broker="kafka",handler="routing.decisions"}',
        'rebond_notifier_referrals_published_total{association="60000-rebonds"}',
        'destination="referrals.60000-rebonds",status="success"',
        'rebond_consumer_lag{group="rebond-notifier",partition="0",topic="routing.decisions"}',
    ],
    "events": [
        'faststream_received_messages_total{app_name="rebond-events",broker="kafka",handler="routing.invitees"}',
        'rebond_consumer_lag{group="rebond-events",partition="0",topic="routing.invitees"}',
        'rebond_http_requests_total{method="GET",route="/healthz",status="200"}',
    ],
}


async def test_every_running_service_serves_its_metrics(running_services: dict) -> None:
    """After a questionnaire went through, each of the four /metrics answers in Prometheus text
    with its HTTP, Kafka, lag and business series, and no reference in any of them."""
    async with httpx.AsyncClient(base_url=running_services["intake"].url) as client:
        reply = await client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
    assert reply.status_code == 202, reply.text
    reference = reply.json()["reference"]
    async with httpx.AsyncClient(timeout=10) as client:
        await client.get(f"{running_services['events'].url}/healthz")
        texts: dict[str, str] = {}

        async def complete() -> bool:
            for name, service in running_services.items():
                reply = await client.get(f"{service.url}/metrics")
                assert reply.status_code == 200
                assert reply.headers["content-type"].startswith("text/plain")
                texts[name] = reply.text
            return all(all(s in texts[n] for s in wanted) for n, wanted in EXPECTED.items())

        await until_async(complete, within_s=20, every_s=0.5)
    for name, wanted in EXPECTED.items():
        missing = [s for s in wanted if s not in texts[name]]
        assert not missing, f"{name} /metrics lacks {missing}"
        assert reference not in texts[name]
