"""The notifier in process on the real broker, with a real SMTP server and a real webhook
receiver: referrals, e-mails, signed webhooks, retries, dead letters, isolation, idempotence."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import ReferralStatus, ReferralStatusV1
from rebond_contracts.topics import DELIVERIES, REFERRAL_STATUS, referrals
from rebond_notifier.app import Notifier
from rebond_notifier.signing import WEBHOOK_ID
from rebond_notifier.store import DELIVERY_NAMESPACE
from rebond_testing import TopicProbe
from rebond_testing.events import publish_event
from rebond_testing.probe import Record

from .conftest import (
    FAST_RETRIES,
    HOOK_SECRET,
    HookedSettings,
    MailBox,
    WebhookReceiver,
    make_decision,
    running,
    send_decision,
)

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
async def notifier(hooked_settings: HookedSettings) -> AsyncIterator[Notifier]:
    """A notifier with fast retries (3 attempts, 0.2 s base) and its own group and store."""
    settings = hooked_settings("test-notifier", webhook_timeout_s=5.0, **FAST_RETRIES)
    async with running(settings) as service:
        yield service


@pytest.fixture(scope="module")
async def deliveries(kafka_bootstrap: str) -> AsyncIterator[TopicProbe]:
    async with TopicProbe(kafka_bootstrap, [DELIVERIES.name]) as probe:
        yield probe


def _outcomes(records: Sequence[Record]) -> list[tuple[str, str, int]]:
    return sorted(
        (d["channel"], d["outcome"], d["attempts"]) for d in (json.loads(r.value) for r in records)
    )


async def _webhook_outcome(
    deliveries: TopicProbe, reference: str, within_s: float = 15
) -> tuple[str, int]:
    """The one webhook outcome reported for `reference`, and after how many attempts."""
    [record] = await deliveries.wait_for(
        reference, 1, within_s=within_s, where=lambda r: b'"webhook"' in r.value
    )
    outcome = json.loads(record.value)
    return outcome["outcome"], outcome["attempts"]


async def test_one_decision_gives_one_referral_two_mails_and_one_signed_webhook(
    kafka_bootstrap: str,
    notifier: Notifier,
    smtp_server: MailBox,
    webhook_receiver: WebhookReceiver,
    deliveries: TopicProbe,
) -> None:
    """Referral on referrals.<id> with ce_* headers, e-mails to association and person, a signed webhook."""
    topic = referrals(AssociationId.SOIXANTE_MILLE_REBONDS)
    async with TopicProbe(kafka_bootstrap, [topic.name]) as watcher:
        decision = make_decision(AssociationId.SOIXANTE_MILLE_REBONDS)
        await send_decision(kafka_bootstrap, decision)
        [record] = await watcher.wait_for(decision.reference, 1)
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["ce_type"] == "fr.rebond.referral.offered"
    assert headers["ce_id"] == str(decision.referral.referral_id)
    assert headers["ce_subject"] == decision.reference
    assert json.loads(record.value)["association_id"] == "60000-rebonds"

    mails = await smtp_server.wait_for(decision.reference, 2)
    assert sorted(str(m["To"]) for m in mails) == [
        "claire@example.org",
        "contact@60000-rebonds.example",
    ]
    [hook] = await webhook_receiver.wait_for(decision.reference, 1)
    assert hook.path == "/hooks/60000-rebonds"
    Webhook(HOOK_SECRET).verify(hook.body, hook.headers)  # a ready-made Standard Webhooks verifier
    assert hook.headers[WEBHOOK_ID] == str(
        uuid.uuid5(DELIVERY_NAMESPACE, f"{decision.referral.referral_id}:webhook:offer")
    )
    assert json.loads(hook.body)["data"]["referral_id"] == str(decision.referral.referral_id)

    outcomes = await deliveries.wait_for(decision.reference, 3)
    assert _outcomes(outcomes) == [
        ("association_email", "sent", 1), ("person_email", "sent", 1), ("webhook", "sent", 1),
    ]  # fmt: skip
    assert b"claire" not in b"".join(r.value for r in outcomes)  # no personal data


async def test_redelivered_decision_sends_nothing_twice(
    kafka_bootstrap: str,
    notifier: Notifier,
    smtp_server: MailBox,
    webhook_receiver: WebhookReceiver,
    deliveries: TopicProbe,
) -> None:
    """The same decision read again sends no second e-mail and no second webhook."""
    decision = make_decision(AssociationId.SECOND_SOUFFLE)
    await send_decision(kafka_bootstrap, decision)
    assert len(await deliveries.wait_for(decision.reference, 3)) == 3
    await send_decision(kafka_bootstrap, decision)
    # A later decision on the same lanes is processed after the redelivery (same key, same partition).
    marker = make_decision(AssociationId.SECOND_SOUFFLE, reference=decision.reference)
    await send_decision(kafka_bootstrap, marker)
    await webhook_receiver.wait_for(decision.reference, 2)
    assert len(await deliveries.wait_for(decision.reference, 6)) == 6
    hooks = [json.loads(h.body)["id"] for h in webhook_receiver.about(decision.reference)]
    assert sorted(hooks) == sorted(
        [str(decision.referral.referral_id), str(marker.referral.referral_id)]
    )
    to_association = [
        m for m in smtp_server.about(decision.reference) if "second-souffle" in str(m["To"])
    ]
    assert len(to_association) == 2  # one per referral, none for the redelivery


async def test_webhook_5xx_then_success_is_retried(
    kafka_bootstrap: str,
    notifier: Notifier,
    webhook_receiver: WebhookReceiver,
    deliveries: TopicProbe,
) -> None:
    """A 503 is retried with backoff; the second attempt succeeds and is reported sent; both
    attempts carry the same delivery id, the receiver's key to recognise a repeat."""
    decision = make_decision(AssociationId.APESA)
    webhook_receiver.script[decision.reference] = [503, 200]
    await send_decision(kafka_bootstrap, decision)
    assert await _webhook_outcome(deliveries, decision.reference) == ("sent", 2)
    attempts = webhook_receiver.about(decision.reference)
    assert [h.status for h in attempts] == [503, 200]
    first, second = (h.headers[WEBHOOK_ID] for h in attempts)
    assert first == second


async def test_webhook_4xx_is_not_retried(
    kafka_bootstrap: str,
    notifier: Notifier,
    webhook_receiver: WebhookReceiver,
    deliveries: TopicProbe,
) -> None:
    """A 400 is a final failure after a single attempt."""
    decision = make_decision(AssociationId.APESA)
    webhook_receiver.script[decision.reference] = [400, 200]
    await send_decision(kafka_bootstrap, decision)
    assert await _webhook_outcome(deliveries, decision.reference) == ("failed", 1)
    rows = await notifier.store.find(str(decision.referral.referral_id))
    assert [(r.channel, r.status) for r in rows if r.channel == "webhook"] == [
        ("webhook", "failed")
    ]
    assert len(webhook_receiver.about(decision.reference)) == 1


async def test_webhook_timeouts_beyond_the_cap_are_dead_lettered(
    kafka_bootstrap: str,
    notifier: Notifier,
    webhook_receiver: WebhookReceiver,
    deliveries: TopicProbe,
) -> None:
    """A webhook that never answers in time is tried 3 times, then logged and reported dead-lettered."""
    decision = make_decision(AssociationId.RE_CREER)  # 0.5 s timeout for re-creer
    webhook_receiver.script[decision.reference] = ["hang"]
    await send_decision(kafka_bootstrap, decision)
    assert await _webhook_outcome(deliveries, decision.reference, 20) == ("dead_lettered", 3)
    assert len(webhook_receiver.about(decision.reference)) == 3
    [row] = [
        r for r in await notifier.store.find(str(decision.referral.referral_id))
        if r.channel == "webhook"
    ]  # fmt: skip
    assert (row.status, row.last_error) == ("dead_lettered", "webhook timeout")
    webhook_receiver.release.setdefault(decision.reference, asyncio.Event()).set()


async def test_a_hanging_association_does_not_delay_another(
    kafka_bootstrap: str,
    notifier: Notifier,
    smtp_server: MailBox,
    webhook_receiver: WebhookReceiver,
) -> None:
    """While APESA's webhook hangs, Second Souffle's decision is consumed and delivered."""
    slow = make_decision(AssociationId.APESA)
    webhook_receiver.script[slow.reference] = ["hang"]
    await send_decision(kafka_bootstrap, slow)
    assert await webhook_receiver.wait_for(slow.reference, 1)
    try:
        quick = make_decision(AssociationId.SECOND_SOUFFLE)
        await send_decision(kafka_bootstrap, quick)
        assert await webhook_receiver.wait_for(quick.reference, 1, within_s=10)
        assert slow.reference in webhook_receiver.open_requests  # still hanging meanwhile
        assert len(await smtp_server.wait_for(quick.reference, 2, within_s=10)) == 2
    finally:
        webhook_receiver.release.setdefault(slow.reference, asyncio.Event()).set()


@pytest.mark.parametrize(
    ("status", "subject"),
    [(ReferralStatus.REMINDED, "Rappel"), (ReferralStatus.EXPIRED, "expirée")],
)
async def test_reminder_and_expiry_become_mails_to_the_association(
    kafka_bootstrap: str,
    notifier: Notifier,
    smtp_server: MailBox,
    status: ReferralStatus,
    subject: str,
) -> None:
    """The router's reminded / expired status gives one e-mail to the association, once."""
    decision = make_decision(AssociationId.SOS_ENTREPRENEUR)
    event = REFERRAL_STATUS.envelope(
        ReferralStatusV1(
            reference=decision.reference,
            referral_id=decision.referral.referral_id,
            association_id=AssociationId.SOS_ENTREPRENEUR,
            status=status,
            at=datetime.now(UTC),
        ),
        subject=decision.reference,
        correlationid=decision.reference,
    )
    await publish_event(kafka_bootstrap, REFERRAL_STATUS.name, event, decision.reference)
    await publish_event(
        kafka_bootstrap, REFERRAL_STATUS.name, event, decision.reference
    )  # redelivery
    # Then the other status: same key and partition, same mail lane, so it comes after.
    other = ReferralStatus.EXPIRED if status == ReferralStatus.REMINDED else ReferralStatus.REMINDED
    marker = REFERRAL_STATUS.envelope(
        event.data.model_copy(update={"status": other}),
        subject=decision.reference,
        correlationid=decision.reference,
    )
    await publish_event(kafka_bootstrap, REFERRAL_STATUS.name, marker, decision.reference)
    mails = await smtp_server.wait_for(decision.reference, 2)
    assert len(mails) == 2
    [mail] = [m for m in mails if subject in str(m["Subject"])]
    assert str(mail["To"]) == "contact@sos-entrepreneur.example"
