"""`subscribe`: handlers take records read by their topic's contract; what the contract refuses
is dead-lettered; each record runs in its scope; batches hand over only readable records."""

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from faststream.kafka import KafkaBroker, TestKafkaBroker
from pydantic import BaseModel, ConfigDict

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import ErasureRequestedV1, ReferralResponseV1
from rebond_contracts.topics import ERASURES, Service, dead_letters, responses
from rebond_kafka.consume import Batch, DeadLetters, Received, subscribe
from rebond_kafka.testing import move_group_to_end
from rebond_testing.waiting import until_async

REFERENCE = "RB-0HCK-9645-C57J-B5Q9"
DEAD = dead_letters(Service.ROUTER)


def erasure(reference: str = REFERENCE) -> tuple[bytes, dict[str, str]]:
    event = ERASURES.envelope(
        ErasureRequestedV1(reference=reference, requested_at=datetime.now(UTC)),
        subject=reference,
        correlationid=reference,
    )
    return event.kafka_value(), event.kafka_headers()


def broker_with(
    handler: Any, *, batch: Batch | None = None, topics: Any = ERASURES, view: Any = None
) -> tuple[KafkaBroker, list[dict[str, Any]]]:
    """A broker with one subscription and a subscriber of the dead letters that records them."""
    broker = KafkaBroker()
    subscribe(
        broker, topics, handler, dead_letters=DeadLetters(broker, Service.ROUTER),
        group_id="test", description="test subscription", batch=batch, view=view,
    )  # fmt: skip
    dead: list[dict[str, Any]] = []

    @broker.subscriber(DEAD.name)
    async def on_dead(body: Any) -> None:
        dead.append(body)

    return broker, dead


async def test_a_handler_gets_the_event_read_by_its_topics_contract() -> None:
    """The handler receives the typed payload, the envelope's attributes and the record."""
    got: list[Received[ErasureRequestedV1]] = []

    async def handler(received: Received[ErasureRequestedV1]) -> None:
        got.append(received)

    broker, dead = broker_with(handler)
    value, headers = erasure()
    async with TestKafkaBroker(broker) as test:
        await test.publish(value, ERASURES.name, key=REFERENCE.encode(), headers=headers)
    assert len(got) == 1 and not dead
    assert isinstance(got[0].data, ErasureRequestedV1)
    assert got[0].data.reference == REFERENCE
    assert got[0].event.id == headers["ce_id"] and got[0].topic is ERASURES


async def test_a_record_the_contract_refuses_is_dead_lettered_and_the_handler_not_called() -> None:
    """Not JSON, a wrong event type or a missing header: each goes to the dead letters with the
    error, and the handler never sees it."""
    called: list[object] = []

    async def handler(received: Received[ErasureRequestedV1]) -> None:
        called.append(received)

    broker, dead = broker_with(handler)
    value, headers = erasure()
    async with TestKafkaBroker(broker) as test:
        await test.publish(b"not json", ERASURES.name, headers=headers)
        await test.publish(value, ERASURES.name, headers={**headers, "ce_type": "fr.other"})
        await test.publish(value, ERASURES.name, headers={"content-type": "application/json"})
    assert not called
    assert len(dead) == 3
    errors = [letter["error"] for letter in dead]
    assert "Invalid JSON" in errors[0] or "json" in errors[0].lower()
    assert "fr.other" in errors[1]
    assert "schema version" in errors[2]


async def test_a_single_record_handler_runs_with_its_reference_and_event_id_bound() -> None:
    """Log lines written by the handler carry the record's reference and event id."""
    bound: list[dict[str, Any]] = []

    async def handler(received: Received[ErasureRequestedV1]) -> None:
        bound.append(structlog.contextvars.get_contextvars())

    broker, _ = broker_with(handler)
    value, headers = erasure()
    async with TestKafkaBroker(broker) as test:
        await test.publish(value, ERASURES.name, headers=headers)
    assert bound[0]["reference"] == REFERENCE and bound[0]["event_id"] == headers["ce_id"]
    assert "reference" not in structlog.contextvars.get_contextvars()


async def test_a_batch_handler_gets_only_the_readable_records() -> None:
    """In a batch, the unreadable records are dead-lettered and the rest handed over."""
    batches: list[Sequence[Received[ErasureRequestedV1]]] = []

    async def handler(batch: Sequence[Received[ErasureRequestedV1]]) -> None:
        batches.append(batch)

    broker, dead = broker_with(handler, batch=Batch(max_records=10, timeout_ms=10))
    value, headers = erasure()
    async with TestKafkaBroker(broker) as test:
        await test.publish_batch(value, b"not json", value, topic=ERASURES.name, headers=headers)
    assert [len(batch) for batch in batches] == [2]
    assert len(dead) == 1


async def test_several_topics_are_each_read_by_their_own_contract() -> None:
    """A subscription of several topics reads each record with the topic it came from."""
    got: list[tuple[str, str]] = []

    async def handler(received: Received[ReferralResponseV1]) -> None:
        got.append((received.topic.name, received.data.answer.value))

    topics = [responses(a) for a in (AssociationId.APESA, AssociationId.RE_CREER)]
    broker, dead = broker_with(handler, topics=topics)
    async with TestKafkaBroker(broker) as test:
        for topic in topics:
            value, headers = response(topic)
            await test.publish(value, topic.name, headers=headers)
    assert got == [("responses.apesa", "accept"), ("responses.re-creer", "accept")] and not dead


class ReferenceOnly(BaseModel):
    """A view of an erasure request: its reference, the rest ignored."""

    model_config = ConfigDict(extra="ignore")

    reference: str


def response(topic: Any) -> tuple[bytes, dict[str, str]]:
    event = topic.envelope(
        ReferralResponseV1(
            referral_id="0b7b2c52-1d55-4a0c-9f0d-6b0d0c7d4b11", reference=REFERENCE,
            answer="accept", answered_at=datetime.now(UTC),
        ),
        subject=REFERENCE, correlationid=REFERENCE,
    )  # fmt: skip
    return event.kafka_value(), event.kafka_headers()


async def test_a_view_given_by_topic_reads_that_topic_so_and_the_others_whole() -> None:
    """With `view={ERASURES: ReferenceOnly}`, an erasure request comes as the view and a
    response on the same subscription as its whole payload."""
    got: list[BaseModel] = []

    async def handler(batch: Sequence[Received[BaseModel]]) -> None:
        got.extend(received.data for received in batch)

    answers = responses(AssociationId.APESA)
    broker, dead = broker_with(
        handler, batch=Batch(max_records=10, timeout_ms=10), topics=[ERASURES, answers],
        view={ERASURES: ReferenceOnly},
    )  # fmt: skip
    async with TestKafkaBroker(broker) as test:
        value, headers = erasure()
        await test.publish(value, ERASURES.name, headers=headers)
        value, headers = response(answers)
        await test.publish(value, answers.name, headers=headers)
    assert [type(data) for data in got] == [ReferenceOnly, ReferralResponseV1] and not dead
    assert got[0] == ReferenceOnly(reference=REFERENCE)


def test_the_asyncapi_document_describes_the_topics_payload() -> None:
    """The channel's message schema is the topic's payload model, with the description given."""
    from faststream.specification import AsyncAPI

    async def handler(received: Received[ErasureRequestedV1]) -> None:
        return None

    broker, _ = broker_with(handler)
    schema = AsyncAPI(broker, schema_version="3.0.0").to_specification().to_jsonable()
    assert "ErasureRequestedV1" in json.dumps(schema["components"]["schemas"])
    assert "test subscription" in json.dumps(schema["channels"])


async def test_a_handler_that_raises_has_its_record_read_again(kafka_bootstrap: str) -> None:
    """At least once, on the real broker: a record whose handler raised is handed over again,
    and the group's offset moves past it only after the handler returned."""
    group = f"test-consume-{uuid.uuid4().hex[:8]}"
    await move_group_to_end(kafka_bootstrap, group, [ERASURES.name])
    attempts: list[str] = []
    done = asyncio.Event()

    async def handler(received: Received[ErasureRequestedV1]) -> None:
        attempts.append(received.event.id)
        if len(attempts) == 1:
            raise RuntimeError("the store hiccuped")
        done.set()

    broker = KafkaBroker(kafka_bootstrap, logger=None)
    subscribe(
        broker, ERASURES, handler, dead_letters=DeadLetters(broker, Service.ROUTER),
        group_id=group, description="test",
    )  # fmt: skip
    value, headers = erasure()
    async with broker:
        await broker.start()
        await broker.publish(value, ERASURES.name, key=REFERENCE.encode(), headers=headers)
        await asyncio.wait_for(done.wait(), 30)
    assert attempts == [headers["ce_id"], headers["ce_id"]]


async def test_an_empty_batch_poll_is_made_again_without_sleeping(monkeypatch) -> None:
    """A batch subscriber whose poll found nothing polls again at once: it never sleeps the
    batch timeout, so a record arriving then is not held back by a timer."""
    import faststream.kafka.subscriber.usecase as usecase

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(usecase.anyio, "sleep", sleep)

    class Consumer:
        def __init__(self) -> None:
            self.polls: list[tuple[int, int | None]] = []

        async def getmany(
            self, *, timeout_ms: int, max_records: int | None
        ) -> dict[str, list[int]]:
            self.polls.append((timeout_ms, max_records))
            return {}

    async def handler(batch: Sequence[Received[ErasureRequestedV1]]) -> None:
        return None

    broker, _ = broker_with(handler, batch=Batch(max_records=7, timeout_ms=100))
    (subscriber,) = [s for s in broker.subscribers if ERASURES.name in s.topic_names]
    consumer = Consumer()
    assert await subscriber.get_msg(consumer) == ()
    assert consumer.polls == [(100, 7)] and slept == []


async def test_an_idle_batch_subscriber_rarely_wakes_yet_takes_a_record_at_once(
    kafka_bootstrap: str, monkeypatch
) -> None:
    """Idle, a batch subscriber with the default poll wait wakes about once per 5 s (not ten
    times a second), and a record published during that wait reaches its handler at once."""
    from aiokafka import AIOKafkaConsumer

    polls: list[float] = []
    getmany = AIOKafkaConsumer.getmany

    async def counted(self: AIOKafkaConsumer, *partitions: Any, **options: Any) -> Any:
        polls.append(asyncio.get_running_loop().time())
        return await getmany(self, *partitions, **options)

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", counted)
    group = f"test-idle-{uuid.uuid4().hex[:8]}"
    await move_group_to_end(kafka_bootstrap, group, [ERASURES.name])
    handled: asyncio.Queue[float] = asyncio.Queue()

    async def handler(batch: Sequence[Received[ErasureRequestedV1]]) -> None:
        for _ in batch:
            handled.put_nowait(asyncio.get_running_loop().time())

    broker = KafkaBroker(kafka_bootstrap, logger=None)
    subscribe(
        broker, ERASURES, handler, dead_letters=DeadLetters(broker, Service.ROUTER),
        group_id=group, description="test", batch=Batch(max_records=10),
    )  # fmt: skip
    (subscriber,) = broker.subscribers[:1]
    async with broker:
        await broker.start()
        assert await until_async(
            lambda: subscriber.consumer and subscriber.consumer.assignment(), 30
        )
        start = asyncio.get_running_loop().time()
        await asyncio.sleep(3)
        idle_polls = [t for t in polls if t > start]
        assert len(idle_polls) <= 1, f"{len(idle_polls)} polls in 3 s of idleness"
        value, headers = erasure()
        sent = asyncio.get_running_loop().time()
        await broker.publish(value, ERASURES.name, key=REFERENCE.encode(), headers=headers)
        took = await asyncio.wait_for(handled.get(), 10) - sent
    assert took < 1.5, f"a record waited {took:.1f} s for an idle poll to end"
