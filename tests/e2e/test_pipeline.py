"""End to end on the real broker: intake -> router -> notifier -> the association's topic."""

import asyncio
import copy
import json
import time

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE

pytestmark = pytest.mark.kafka


async def _consumer_at_end(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A plain aiokafka consumer (no project code), positioned after everything already there."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="latest", enable_auto_commit=False
    )
    await consumer.start()
    deadline = time.monotonic() + 10
    while not consumer.assignment() and time.monotonic() < deadline:
        await consumer.getmany(timeout_ms=100)
    assert consumer.assignment(), f"no partitions of {topic} assigned"
    for partition in consumer.assignment():
        await consumer.position(partition)  # pins "latest" before anything is posted
    return consumer


async def _find(consumer: AIOKafkaConsumer, key: bytes, within_s: float) -> list[object]:
    deadline = time.monotonic() + within_s
    found = []
    while time.monotonic() < deadline and not found:
        batches = await consumer.getmany(timeout_ms=200)
        found = [r for records in batches.values() for r in records if r.key == key]
    return found


async def test_questionnaire_after_liquidation_reaches_60000_rebonds(
    kafka_bootstrap: str, running_services: dict[str, object]
) -> None:
    """A person after a liquidation is referred to 60 000 rebonds within 10 s, headers included."""
    consumer = await _consumer_at_end(kafka_bootstrap, "referrals.60000-rebonds")
    try:
        async with httpx.AsyncClient(base_url=running_services["intake"].url) as client:  # type: ignore[attr-defined]
            reply = await client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
        assert reply.status_code == 202, reply.text
        reference = reply.json()["reference"]

        records = await _find(consumer, reference.encode(), within_s=10)
        assert len(records) == 1, f"no referral for {reference} on referrals.60000-rebonds"
        record = records[0]
        referral = json.loads(record.value)
        headers = {k: v.decode() for k, v in record.headers}
        assert referral["reference"] == reference
        assert referral["association_id"] == "60000-rebonds"
        assert referral["contact"]["first_name"] == "Claire"
        assert headers["ce_subject"] == reference
        assert headers["ce_type"] == "fr.rebond.referral.offered"
        assert headers["ce_specversion"] == "1.0"
        assert headers["ce_correlationid"] == reference
        assert headers["content-type"] == "application/json"
    finally:
        await consumer.stop()


async def test_without_consent_a_decision_is_made_but_nothing_is_referred(
    kafka_bootstrap: str, running_services: dict[str, object]
) -> None:
    """No consent to share: the router still decides, yet no association topic gets the person."""
    answers = copy.deepcopy(EXAMPLE_QUESTIONNAIRE)
    answers["consents"]["share_with_association"] = False  # type: ignore[index]
    del answers["contact"]
    decisions = await _consumer_at_end(kafka_bootstrap, "routing.decisions")
    referrals = await _consumer_at_end(kafka_bootstrap, "referrals.60000-rebonds")
    try:
        async with httpx.AsyncClient(base_url=running_services["intake"].url) as client:  # type: ignore[attr-defined]
            reply = await client.post("/v1/submissions", json=answers)
        assert reply.status_code == 202, reply.text
        key = reply.json()["reference"].encode()

        decided = await _find(decisions, key, within_s=10)
        assert len(decided) == 1
        decision = json.loads(decided[0].value)
        assert decision["primary"] == "60000-rebonds"
        assert decision["referral"] is None
        assert await _find(referrals, key, within_s=2) == []
    finally:
        await asyncio.gather(decisions.stop(), referrals.stop())
