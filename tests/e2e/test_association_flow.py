"""The associations' side end to end, on the real broker, real SMTP and real HTTP.

One submission gives one referral on the right topic (headers included), one e-mail to the
association and one to the person, one signed webhook; the association's accept, sent with the
`rebond-association` client under its own principal, reaches the person's status timeline.
"""

import asyncio
import json
import os
import sys

import httpx
import pytest
from standardwebhooks import Webhook

from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_testing import TopicProbe, headers, processed, until_async

from .conftest import GROUPS, WEBHOOK_ASSOCIATION, WEBHOOK_SECRET, Pipeline

pytestmark = pytest.mark.kafka

ASSOCIATION_MAIL = f"orientation@{WEBHOOK_ASSOCIATION}.example"
PERSON_MAIL = EXAMPLE_QUESTIONNAIRE["contact"]["email"]  # type: ignore[index]


async def test_one_submission_reaches_the_association_every_way_and_its_accept_reaches_the_person(  # type: ignore[no-untyped-def]
    kafka_bootstrap, kafka_secure, running_services: Pipeline
) -> None:
    """Topic, two e-mails, one signed webhook; the CLI accept shows on the status timeline.

    "One" is counted once everything the submission causes is done, not after a pause: the
    notifier's group past the decision (so its referral is on the topic, read to its end, and
    its deliveries recorded), then every delivery of the reference sent (so the mail sink and the
    webhook receiver hold all they will get)."""
    run = running_services
    intake = run["intake"].url
    async with (
        TopicProbe(kafka_bootstrap, ["routing.decisions"]) as decisions,
        TopicProbe(
            kafka_secure.bootstrap, [f"referrals.{WEBHOOK_ASSOCIATION}"],
            **kafka_secure.sasl(f"association-{WEBHOOK_ASSOCIATION}"),
        ) as referrals,
    ):  # fmt: skip
        async with httpx.AsyncClient() as client:
            reply = await client.post(f"{intake}/v1/submissions", json=EXAMPLE_QUESTIONNAIRE)
        assert reply.status_code == 202, reply.text
        reference = reply.json()["reference"]

        decided = await decisions.wait_for(reference, within_s=20)
        assert decided, f"no decision for {reference}"
        assert await processed(kafka_bootstrap, GROUPS["notifier"], decided, within_s=30)
        await referrals.to_end()
        records = referrals.about(reference)
    assert len(records) == 1, f"{len(records)} referral records for {reference}"
    ce = headers(records[0])
    assert ce["ce_subject"] == reference and ce["ce_type"] == "fr.rebond.referral.offered"
    assert json.loads(records[0].value)["association_id"] == WEBHOOK_ASSOCIATION

    def all_sent() -> bool:
        statuses = run.rows(
            "notifier", "SELECT status FROM notifier_deliveries WHERE reference = ?", reference
        )
        return bool(statuses) and all(status != "pending" for (status,) in statuses)

    assert await until_async(all_sent, within_s=30), "deliveries still pending"
    assert len(run.mail.matching(to=ASSOCIATION_MAIL, about=reference)) == 1
    assert len(run.mail.matching(to=PERSON_MAIL, about=reference)) == 1
    ours = [call for call in run.hooks.received() if json.loads(call.body)["subject"] == reference]
    assert len(ours) == 1
    # What an association does: a ready-made Standard Webhooks verifier (id, timestamp, body).
    Webhook(WEBHOOK_SECRET).verify(ours[0].body, ours[0].headers)
    event = json.loads(ours[0].body)  # the whole CloudEvent, structured mode
    assert event["subject"] == reference and event["data"]["reference"] == reference

    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rebond_notifier.association_cli", "accept", reference,
        "--association", WEBHOOK_ASSOCIATION,
        env={
            **os.environ,
            "REBOND_KAFKA_BOOTSTRAP_SERVERS": kafka_secure.bootstrap,
            "REBOND_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "REBOND_KAFKA_SASL_USERNAME": f"association-{WEBHOOK_ASSOCIATION}",
            "REBOND_KAFKA_SASL_PASSWORD": kafka_secure.credentials[
                f"association-{WEBHOOK_ASSOCIATION}"
            ],
        },
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(cli.communicate(), timeout=60)
    assert cli.returncode == 0, stderr.decode()

    async with httpx.AsyncClient(base_url=intake) as client:

        async def timeline() -> list[str]:
            status = (await client.get(f"/v1/submissions/{reference}")).json()
            return [step["code"] for step in status["timeline"]]

        async def accepted() -> bool:
            return "accepted" in await timeline()

        assert await until_async(accepted, within_s=20, every_s=0.2), await timeline()
