"""End to end on the real broker: intake -> router -> notifier -> the association's topic."""

import copy
import json

import httpx
import pytest

from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_testing import TopicProbe, headers, processed

from .conftest import GROUPS, Pipeline

pytestmark = pytest.mark.kafka


async def test_questionnaire_after_liquidation_reaches_60000_rebonds(
    kafka_bootstrap: str, running_services: Pipeline
) -> None:
    """A person after a liquidation is referred to 60 000 rebonds within 10 s, headers included."""
    async with TopicProbe(kafka_bootstrap, ["referrals.60000-rebonds"]) as referrals:
        async with httpx.AsyncClient(base_url=running_services["intake"].url) as client:
            reply = await client.post("/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
        assert reply.status_code == 202, reply.text
        reference = reply.json()["reference"]

        records = await referrals.wait_for(reference, within_s=10)
        assert len(records) == 1, f"no referral for {reference} on referrals.60000-rebonds"
        record = records[0]
        referral = json.loads(record.value)
        ce = headers(record)
        assert referral["reference"] == reference
        assert referral["association_id"] == "60000-rebonds"
        assert referral["contact"]["first_name"] == "Claire"
        assert ce["ce_subject"] == reference
        assert ce["ce_type"] == "fr.rebond.referral.offered"
        assert ce["ce_specversion"] == "1.0"
        assert ce["ce_correlationid"] == reference
        assert ce["content-type"] == "application/json"


async def test_without_consent_a_decision_is_made_but_nothing_is_referred(
    kafka_bootstrap: str, running_services: Pipeline
) -> None:
    """No consent to share: the router still decides, yet no association topic gets the person
    (read once the notifier is past that decision, so a referral would be there)."""
    answers = copy.deepcopy(EXAMPLE_QUESTIONNAIRE)
    answers["consents"]["share_with_association"] = False  # type: ignore[index]
    del answers["contact"]
    async with (
        TopicProbe(kafka_bootstrap, ["routing.decisions"]) as decisions,
        TopicProbe(kafka_bootstrap, ["referrals.60000-rebonds"]) as referrals,
    ):
        async with httpx.AsyncClient(base_url=running_services["intake"].url) as client:
            reply = await client.post("/v1/submissions", json=answers)
        assert reply.status_code == 202, reply.text
        reference = reply.json()["reference"]

        decided = await decisions.wait_for(reference, within_s=10)
        assert len(decided) == 1
        decision = json.loads(decided[0].value)
        assert decision["primary"] == "60000-rebonds"
        assert decision["referral"] is None
        assert await processed(kafka_bootstrap, GROUPS["notifier"], decided, within_s=30)
        await referrals.to_end()
        assert referrals.about(reference) == []
