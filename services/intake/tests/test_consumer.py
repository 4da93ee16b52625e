"""Intake's status consumer as a handler (FastStream's in-memory broker, the fake store): what it
keeps of each of its four topics, and what it dead-letters."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from faststream.kafka import TestKafkaBroker
from pydantic import BaseModel

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    DeliveryChannel,
    DeliveryOutcome,
    DeliveryV1,
    QuestionnaireCompletedV1,
    ReferralStatus,
    ReferralStatusV1,
    RoutingOutcomeV1,
    new_reference,
)
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE, QuestionnaireV1
from rebond_contracts.topics import (
    DELIVERIES,
    OUTCOMES,
    QUESTIONNAIRES,
    REFERRAL_STATUS,
    Service,
    Topic,
    dead_letters,
)
from rebond_intake.consumer import build_consumer

from .conftest import FakeStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def consumer(store: FakeStore) -> tuple[Any, list[dict[str, Any]]]:
    """Intake's consumer on an unconnected broker, and the dead letters it sends."""
    broker = build_consumer("localhost:9092", store, group_id="test")
    dead: list[dict[str, Any]] = []

    @broker.subscriber(dead_letters(Service.INTAKE).name)
    async def on_dead(body: Any) -> None:
        dead.append(body)

    return broker, dead


async def publish(test: Any, topic: Topic, data: BaseModel, reference: str) -> str:
    """Publish `data` on `topic` as its writer does; its event id."""
    event = topic.envelope(data, subject=reference, correlationid=reference)
    await test.publish(
        event.kafka_value(), topic.name, key=reference.encode(), headers=event.kafka_headers()
    )
    return event.id


async def test_each_topic_becomes_its_status_record() -> None:
    """A submission read back, an outcome, a referral status and a delivery each become the
    reference's record of that kind, at the event's own time."""
    store, reference = FakeStore(), new_reference()
    broker, dead = consumer(store)
    questionnaire = QuestionnaireV1.model_validate(EXAMPLE_QUESTIONNAIRE)
    async with TestKafkaBroker(broker) as test:
        await publish(
            test,
            QUESTIONNAIRES,
            QuestionnaireCompletedV1(
                reference=reference, received_at=T0, questionnaire=questionnaire
            ),
            reference,
        )
        await publish(
            test,
            OUTCOMES,
            RoutingOutcomeV1(
                decision_id=uuid.uuid4(),
                reference=reference,
                decided_at=T0 + timedelta(seconds=1),
                primary=AssociationId.SOIXANTE_MILLE_REBONDS,
            ),
            reference,
        )
        await publish(
            test,
            REFERRAL_STATUS,
            ReferralStatusV1(
                reference=reference,
                association_id=AssociationId.SOIXANTE_MILLE_REBONDS,
                status=ReferralStatus.ACCEPTED,
                at=T0 + timedelta(seconds=2),
            ),
            reference,
        )
        await publish(test, DELIVERIES, DeliveryV1(
            reference=reference, channel=DeliveryChannel.ASSOCIATION_EMAIL, outcome=DeliveryOutcome.SENT,
            at=T0 + timedelta(seconds=3)), reference)  # fmt: skip
    records = sorted(await store.records(reference), key=lambda record: record.at)
    assert [(r.kind, r.at) for r in records] == [
        ("received", T0), ("decision", T0 + timedelta(seconds=1)),
        ("status", T0 + timedelta(seconds=2)), ("delivery", T0 + timedelta(seconds=3)),
    ]  # fmt: skip
    assert records[1].detail["primary"] == "60000-rebonds" and not dead


async def test_a_submission_is_read_back_for_its_reference_and_time_only() -> None:
    """Of intake's own questionnaire event only the reference and time are read: answers that
    today's contract would refuse do not keep "received" from being kept."""
    store, reference = FakeStore(), new_reference()
    broker, dead = consumer(store)
    event = QUESTIONNAIRES.envelope(
        QuestionnaireCompletedV1(
            reference=reference, received_at=T0,
            questionnaire=QuestionnaireV1.model_validate(EXAMPLE_QUESTIONNAIRE),
        ),
        subject=reference, correlationid=reference,
    )  # fmt: skip
    value = json.loads(event.kafka_value())
    value["questionnaire"]["needs"] = ["a need no contract knows"]
    async with TestKafkaBroker(broker) as test:
        await test.publish(
            json.dumps(value).encode(), QUESTIONNAIRES.name, key=reference.encode(),
            headers=event.kafka_headers(),
        )  # fmt: skip
    [record] = await store.records(reference)
    assert (record.kind, record.event_id, record.at) == ("received", event.id, T0) and not dead


async def test_a_record_read_twice_is_kept_once() -> None:
    """At least once: the same event delivered again adds nothing."""
    store, reference = FakeStore(), new_reference()
    broker, _ = consumer(store)
    status = ReferralStatusV1(
        reference=reference, status=ReferralStatus.OFFERED, at=T0,
        association_id=AssociationId.APESA,
    )  # fmt: skip
    event = REFERRAL_STATUS.envelope(status, subject=reference, correlationid=reference)
    async with TestKafkaBroker(broker) as test:
        for _ in range(2):
            await test.publish(
                event.kafka_value(), REFERRAL_STATUS.name, headers=event.kafka_headers()
            )
    assert [r.event_id for r in await store.records(reference)] == [event.id]


async def test_an_unreadable_record_is_dead_lettered_and_nothing_kept() -> None:
    """A record its topic's contract refuses goes to deadletter.intake, with the error."""
    store, reference = FakeStore(), new_reference()
    broker, dead = consumer(store)
    async with TestKafkaBroker(broker) as test:
        await test.publish(b"not json", OUTCOMES.name, key=reference.encode(), headers={})
    assert await store.records(reference) == []
    [letter] = dead
    assert letter["topic"] == OUTCOMES.name and letter["error"]
