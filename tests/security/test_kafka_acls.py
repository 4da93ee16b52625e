"""Kafka authorisation on the real broker: each principal may do only what the registry gives it."""

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

pytestmark = pytest.mark.kafka


async def _send(kafka_secure, principal: str, topic: str, **auth_override: str) -> None:  # type: ignore[no-untyped-def]
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_secure.bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=10_000,
        **{**kafka_secure.sasl(principal), **auth_override},
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"RB-TEST")
    finally:
        await producer.stop()


async def _read(kafka_secure, principal: str, topic: str, group: str) -> int:  # type: ignore[no-untyped-def]
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_secure.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        **kafka_secure.sasl(principal),
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        return sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()


async def test_an_association_cannot_read_another_associations_referrals(kafka_secure) -> None:  # type: ignore[no-untyped-def]
    """Second Souffle reading referrals.60000-rebonds gets an authorisation error."""
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(
            kafka_secure, "association-second-souffle", "referrals.60000-rebonds",
            f"association-second-souffle.{uuid.uuid4().hex[:6]}",
        )  # fmt: skip


async def test_an_association_reads_its_own_referrals_with_its_own_group(kafka_secure) -> None:  # type: ignore[no-untyped-def]
    """60 000 rebonds reads referrals.60000-rebonds, but not under another association's group."""
    await _send(kafka_secure, "notifier", "referrals.60000-rebonds")
    assert (
        await _read(
            kafka_secure,
            "association-60000-rebonds",
            "referrals.60000-rebonds",
            f"association-60000-rebonds.{uuid.uuid4().hex[:6]}",
        )
        >= 1
    )
    with pytest.raises(GroupAuthorizationFailedError):
        await _read(
            kafka_secure,
            "association-60000-rebonds",
            "referrals.60000-rebonds",
            "association-apesa",
        )


async def test_a_group_that_only_starts_like_an_associations_own_is_refused(kafka_secure) -> None:  # type: ignore[no-untyped-def]
    """Groups are `association-<id>` or `association-<id>.<name>`: a name that merely starts
    with it (what another association's id could extend) is refused."""
    with pytest.raises(GroupAuthorizationFailedError):
        await _read(
            kafka_secure, "association-apesa", "referrals.apesa",
            f"association-apesa-{uuid.uuid4().hex[:6]}",
        )  # fmt: skip
    await _read(
        kafka_secure, "association-apesa", "referrals.apesa",
        f"association-apesa.{uuid.uuid4().hex[:6]}",
    )  # fmt: skip


async def test_an_association_answers_only_on_its_own_responses_topic(kafka_secure) -> None:  # type: ignore[no-untyped-def]
    """An association writes responses.<its id>; responses.<another id> is refused."""
    await _send(kafka_secure, "association-apesa", "responses.apesa")
    with pytest.raises(TopicAuthorizationFailedError):
        await _send(kafka_secure, "association-apesa", "responses.second-souffle")


@pytest.mark.parametrize(
    ("principal", "own", "foreign"),
    [
        ("intake", "questionnaires.completed", "routing.decisions"),
        ("router", "routing.decisions", "referrals.60000-rebonds"),
        ("notifier", "referrals.apesa", "questionnaires.completed"),
    ],
)
async def test_a_service_writes_only_the_topics_it_owns(  # type: ignore[no-untyped-def]
    kafka_secure, principal: str, own: str, foreign: str
) -> None:
    """Each service writes its own topic; writing a topic another service owns is refused."""
    await _send(kafka_secure, principal, own)
    with pytest.raises(TopicAuthorizationFailedError):
        await _send(kafka_secure, principal, foreign)


@pytest.mark.parametrize("principal", ["intake", "events"])
async def test_the_internet_facing_services_may_not_read_the_decisions(  # type: ignore[no-untyped-def]
    kafka_secure, principal: str
) -> None:
    """routing.decisions carries contact details, the message and the distress answer: intake
    and events, which face the internet, are refused it (the notifier alone reads it)."""
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(
            kafka_secure, principal, "routing.decisions",
            f"rebond-{principal}.acl-{uuid.uuid4().hex[:6]}",
        )  # fmt: skip


@pytest.mark.parametrize(
    ("principal", "topic"), [("intake", "routing.outcomes"), ("events", "routing.invitees")]
)
async def test_intake_and_events_read_what_the_router_derived_for_them(  # type: ignore[no-untyped-def]
    kafka_secure, principal: str, topic: str
) -> None:
    """Intake reads the routing outcomes (no personal data), events the invitees."""
    await _send(kafka_secure, "router", topic)
    group = f"rebond-{principal}.acl-{uuid.uuid4().hex[:6]}"
    assert await _read(kafka_secure, principal, topic, group) >= 1


async def test_a_wrong_password_does_not_get_in(kafka_secure) -> None:  # type: ignore[no-untyped-def]
    """SASL/SCRAM refuses a principal with the wrong password."""
    with pytest.raises(KafkaConnectionError):
        await _send(
            kafka_secure,
            "intake",
            "questionnaires.completed",
            sasl_plain_password="not-the-password",
        )
