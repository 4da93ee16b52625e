"""One trace from an HTTP request through Kafka, on the real broker: a request's `traceparent`
is continued by the records it causes, by the single-record and batch consumers that read them,
by what they publish at once and by what a relay publishes later from an outbox row; the ids
are the same with export off (nothing exported) and on (the spans in the exporter)."""

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import structlog
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from structlog.testing import capture_logs

from rebond_contracts.tracing import TraceParent
from rebond_kafka.testing import create_topics
from rebond_observability import Observability, current_trace

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
log = structlog.get_logger("test")


@dataclass
class Settings:
    otel_enabled: bool
    otel_endpoint: str = "http://127.0.0.1:9/v1/traces"  # never reached: an exporter is given


async def first_record(bootstrap: str, topic: str) -> Any:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    return records[0]
    finally:
        await consumer.stop()


@pytest.mark.kafka
@pytest.mark.parametrize("export", [False, True], ids=["export off", "export on"])
async def test_one_trace_from_a_request_through_kafka_and_an_outbox(
    kafka_bootstrap: str, export: bool
) -> None:
    """HTTP request -> record on `a` -> single-record consumer (its log line says the trace)
    -> record on `b` -> batch consumer, per record -> an outbox row keeping the trace -> a relay
    publishing it later, outside any span -> record on `c`: one trace id all along. Off, nothing
    is exported; on, the spans of every hop are, in that trace."""
    run = uuid.uuid4().hex[:8]
    a, b, c = (f"test.tracing.{name}.{run}" for name in "abc")
    await create_topics(kafka_bootstrap, [a, b, c], 1)
    exporter = InMemorySpanExporter()
    obs = Observability("test", Settings(otel_enabled=export), exporter)
    broker = obs.instrument(KafkaBroker(kafka_bootstrap, logger=None))
    to_a, to_b, to_c = broker.publisher(a), broker.publisher(b), broker.publisher(c)
    seen: dict[str, TraceParent | None] = {}
    outbox: list[dict[str, str]] = []
    relayed = asyncio.Event()

    @broker.subscriber(a, group_id=f"test-a-{run}", auto_offset_reset="earliest")
    async def on_a(body: bytes) -> None:
        seen["a"] = current_trace()
        log.info("handled_a")
        await to_b.publish(b"from a", key=b"k")

    @broker.subscriber(b, group_id=f"test-b-{run}", auto_offset_reset="earliest", batch=True)
    async def on_b(bodies: list[bytes], msg: KafkaMessage) -> None:
        for record in msg.raw_message:  # type: ignore[union-attr]
            with obs.record_scope(record):
                seen["b"] = current_trace()
                trace = current_trace()
                assert trace is not None
                outbox.append({"traceparent": trace.header()})  # written with the state change
        relayed.set()

    app = FastAPI()
    obs.install(app)

    @app.post("/go")
    async def go() -> dict[str, str]:
        await to_a.publish(b"from http", key=b"k")
        return {}

    await broker.start()
    try:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                reply = await client.post("/go", headers={"traceparent": PARENT})
            await asyncio.wait_for(relayed.wait(), 30)
        # The relay, later and outside any span (a periodic task), publishes the outbox row.
        assert current_trace() is None
        await to_c.publish(b"from the outbox", key=b"k", headers=outbox[0])
        on_c = await first_record(kafka_bootstrap, c)
    finally:
        await broker.stop()
        await obs.close()

    answered = TraceParent.parse(reply.headers["traceparent"])
    relayed_trace = TraceParent.parse(dict(on_c.headers)["traceparent"])
    assert answered is not None and answered.trace_id == TRACE
    assert {hop: trace.trace_id if trace else None for hop, trace in seen.items()} == {
        "a": TRACE, "b": TRACE,
    }  # fmt: skip
    assert relayed_trace is not None and relayed_trace.trace_id == TRACE
    (line,) = [line for line in logs if line["event"] == "handled_a"]
    assert line["trace_id"] == TRACE and line["topic"] == a
    spans = exporter.get_finished_spans()
    if not export:
        assert spans == ()
        return
    in_trace = {
        (span.name, span.kind) for span in spans if format(span.context.trace_id, "032x") == TRACE
    }
    assert {
        ("POST /go", SpanKind.SERVER),
        (f"{a} publish", SpanKind.PRODUCER),
        (f"{a} process", SpanKind.CONSUMER),
        (f"{b} publish", SpanKind.PRODUCER),
        (f"{b} process", SpanKind.CONSUMER),
        (f"{c} publish", SpanKind.PRODUCER),
    } <= in_trace


def a_record(topic: str, traceparent: str | None) -> Any:
    from aiokafka import ConsumerRecord

    headers = [("ce_id", b"event-1"), ("ce_correlationid", b"RB-0000-0000-0000-0000")]
    if traceparent:
        headers.append(("traceparent", traceparent.encode()))
    return ConsumerRecord(
        topic=topic, partition=0, offset=0, timestamp=0, timestamp_type=0, key=b"k",
        value=b"{}", checksum=None, serialized_key_size=1, serialized_value_size=2,
        headers=headers,
    )  # fmt: skip


@pytest.mark.parametrize("export", [False, True], ids=["export off", "export on"])
def test_a_record_scope_entered_again_adds_no_span_and_counts_a_failure_once(
    export: bool,
) -> None:
    """A single-record handler is in its record's scope twice (the middleware's, the
    handler's): one span continuing the record's trace, one failure counted; a record without
    `traceparent` starts a trace of its own."""
    exporter = InMemorySpanExporter()
    obs = Observability("test", Settings(otel_enabled=export), exporter)
    record = a_record("routing.decisions", PARENT)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        with pytest.raises(RuntimeError), obs.record_scope(record), obs.record_scope(record):
            log.info("inside")
            raise RuntimeError("handler failed")
        with obs.record_scope(a_record("routing.decisions", None)):
            other = current_trace()
    assert obs.failed.labels("routing.decisions")._value.get() == 1
    (inside,) = logs[:1]
    assert (inside["trace_id"], inside["reference"], inside["event_id"]) == (
        TRACE, "RB-0000-0000-0000-0000", "event-1",
    )  # fmt: skip
    assert other is not None and other.trace_id != TRACE
    spans = exporter.get_finished_spans()
    assert len(spans) == (2 if export else 0)
