"""The person's side of the journey on the real broker, with a real SMTP server, a real webhook
receiver and the notifier's pages served over HTTP: a step's e-mail sent once, the follow-up
link's answer published on `referrals.followups`, a withdrawal's typed webhook."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest
import uvicorn
from standardwebhooks import Webhook

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    AntennaV1,
    ErasureRequestedV1,
    ReferralStatus,
    ReferralStatusV1,
)
from rebond_contracts.topics import DECISIONS, ERASURES, FOLLOW_UPS, REFERRAL_STATUS
from rebond_notifier.app import Notifier, build
from rebond_testing import TopicProbe
from rebond_testing.events import publish_event

from .conftest import (
    HOOK_SECRET,
    HookedSettings,
    MailBox,
    WebhookReceiver,
    free_port,
    make_decision,
    poll_until,
)

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
async def notifier(hooked_settings: HookedSettings) -> AsyncIterator[Notifier]:
    """The notifier `build` makes, its pages served by uvicorn on a free port (whose lifespan
    starts and stops the notifier), with its own group and store."""
    port = free_port()
    settings = hooked_settings(
        "test-journey", public_base_url=f"http://127.0.0.1:{port}",
        portal_base_url="https://portail.example", callback_working_days=3,
        privacy_contact="donnees@portail-rebond.fr",
    )  # fmt: skip
    service = build(settings)
    server = uvicorn.Server(
        uvicorn.Config(service.web, host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    await poll_until(lambda: server.started, 30)
    await service.wait_connected()
    yield service
    server.should_exit = True
    await serving


async def _send(
    bootstrap: str, topic, payload, reference: str, event_id: str | None = None
) -> None:  # type: ignore[no-untyped-def]
    event = topic.envelope(payload, subject=reference, correlationid=reference, id=event_id)
    await publish_event(bootstrap, topic.name, event, reference)


def _status(decision, status: ReferralStatus, **fields) -> ReferralStatusV1:  # type: ignore[no-untyped-def]
    referral = decision.referral
    return ReferralStatusV1(
        reference=decision.reference, referral_id=referral.referral_id,
        association_id=referral.association_id, status=status, at=datetime.now(UTC), **fields,
    )  # fmt: skip


def _to_person(box: MailBox, reference: str) -> list[str]:
    return [m.get_content() for m in box.about(reference) if str(m["To"]) == "claire@example.org"]


async def test_an_acceptance_read_twice_gives_the_person_one_email(
    kafka_bootstrap: str, notifier: Notifier, smtp_server: MailBox
) -> None:
    """An `accepted` status read twice (same event id) sends the person one e-mail naming the
    association, who calls and when, with the /suivi link, and never their message."""
    decision = make_decision(AssociationId.SECOND_SOUFFLE)
    await _send(kafka_bootstrap, DECISIONS, decision, decision.reference)
    await poll_until(lambda: len(_to_person(smtp_server, decision.reference)) == 1, 15)
    call_by = datetime(2027, 1, 14, 17, 30, tzinfo=UTC)
    accepted = _status(decision, ReferralStatus.ACCEPTED, caller="Marc", call_by=call_by)
    for _ in range(2):
        await _send(kafka_bootstrap, REFERRAL_STATUS, accepted, decision.reference, "same-id")
    # A later status on the same key is read after both copies: its end marks theirs.
    closed = _status(decision, ReferralStatus.CLOSED)
    await _send(kafka_bootstrap, REFERRAL_STATUS, closed, decision.reference)
    await poll_until(lambda: len(_to_person(smtp_server, decision.reference)) >= 3, 15)
    _confirmation, accepted_mail, closed_mail = _to_person(smtp_server, decision.reference)
    assert "Second Souffle a accepté de vous accompagner" in accepted_mail
    assert "Marc, de Second Souffle, vous contactera d'ici le 14/01/2027 à 18 h 30" in accepted_mail
    assert f"https://portail.example/suivi/{decision.reference}" in accepted_mail
    assert "Liquidation clôturée" not in accepted_mail  # never the free text
    assert "est désormais close" in closed_mail
    kinds = [d.kind for d in await notifier.store.find(str(decision.referral.referral_id))]
    assert sorted(k for k in kinds if k.startswith("p_")) == ["p_accepted", "p_closed"]


async def test_a_follow_up_answer_goes_to_referrals_followups_once(
    kafka_bootstrap: str, notifier: Notifier, smtp_server: MailBox
) -> None:
    """The follow-up e-mail's "Non" link, opened then confirmed (twice: the second gets the
    same page), publishes `FollowUpAnsweredV1` with contacted=false on referrals.followups,
    and the answer is recorded once, saying the person's consent to statistics (from their
    first decision, for the console's follow-up rate)."""
    async with TopicProbe(kafka_bootstrap, [FOLLOW_UPS.name]) as watcher:
        decision = make_decision(AssociationId.SOIXANTE_MILLE_REBONDS).model_copy(
            update={"statistics_consent": True}
        )
        await _send(kafka_bootstrap, DECISIONS, decision, decision.reference)
        due = _status(decision, ReferralStatus.FOLLOW_UP_DUE)
        await _send(kafka_bootstrap, REFERRAL_STATUS, due, decision.reference)
        await poll_until(
            lambda: any("Avez-vous été contacté" in t
                        for t in _to_person(smtp_server, decision.reference)), 15,
        )  # fmt: skip
        [text] = [t for t in _to_person(smtp_server, decision.reference) if "- Non : " in t]
        no = re.search(r"- Non : (\S+)", text)
        assert no is not None
        async with httpx.AsyncClient() as client:
            shown = await client.get(no.group(1))
            assert shown.status_code == 200 and "Non, personne ne m'a contacté·e" in unescape(
                shown.text
            )
            first = await client.post(no.group(1))
            again = await client.post(no.group(1))
        assert first.status_code == again.status_code == 200
        assert "L'équipe du Portail du rebond reprend votre demande" in unescape(first.text)
        [record] = await watcher.wait_for(decision.reference, 1)
    assert await notifier.store.follow_up_given(str(decision.referral.referral_id)) is False
    answer = json.loads(record.value)
    assert answer["contacted"] is False and answer["statistics_consent"] is True
    assert answer["referral_id"] == str(decision.referral.referral_id)
    assert dict(record.headers)["ce_type"] == b"fr.rebond.referral.follow_up_answered"


async def test_an_erasure_is_told_by_typed_webhook_and_email_and_confirmed_to_the_person(
    kafka_bootstrap: str,
    notifier: Notifier,
    smtp_server: MailBox,
    webhook_receiver: WebhookReceiver,
) -> None:
    """After an erasure, the association gets a signed webhook typed
    `fr.rebond.referral.withdrawn` and an e-mail; the person gets the confirmation."""
    decision = make_decision(AssociationId.APESA)
    await _send(kafka_bootstrap, DECISIONS, decision, decision.reference)
    await webhook_receiver.wait_for(decision.reference, 1)
    erasure = ErasureRequestedV1(reference=decision.reference, requested_at=datetime.now(UTC))
    await _send(kafka_bootstrap, ERASURES, erasure, decision.reference)
    hooks = await webhook_receiver.wait_for(decision.reference, 2)
    bodies = [json.loads(h.body) for h in hooks]
    assert [b["type"] for b in bodies] == [
        "fr.rebond.referral.offered",
        "fr.rebond.referral.withdrawn",
    ]
    Webhook(HOOK_SECRET).verify(hooks[1].body, hooks[1].headers)
    assert bodies[1]["data"]["referral_id"] == str(decision.referral.referral_id)
    await poll_until(
        lambda: any("données ont été effacées" in str(m["Subject"])
                    for m in smtp_server.about(decision.reference)), 15,
    )  # fmt: skip
    subjects = [str(m["Subject"]) for m in smtp_server.about(decision.reference)]
    assert f"Demande {decision.reference} retirée" in subjects
    assert await notifier.store.people([decision.reference]) == {}


async def test_a_reminder_is_webhooked_with_its_type(
    kafka_bootstrap: str, notifier: Notifier, webhook_receiver: WebhookReceiver
) -> None:
    """A reminder reaches the association's webhook as `fr.rebond.referral.reminder`."""
    decision = make_decision(AssociationId.RE_CREER)
    await _send(kafka_bootstrap, DECISIONS, decision, decision.reference)
    reminded = _status(
        decision, ReferralStatus.REMINDED, respond_by=datetime.now(UTC) + timedelta(days=1)
    )
    await _send(kafka_bootstrap, REFERRAL_STATUS, reminded, decision.reference)
    hooks = await webhook_receiver.wait_for(decision.reference, 2)
    assert sorted(json.loads(h.body)["type"] for h in hooks) == [
        "fr.rebond.referral.offered",
        "fr.rebond.referral.reminder",
    ]


def _both_tracks(reference: str | None = None):  # type: ignore[no-untyped-def]
    """A main-track decision (Second Souffle) and a distress-track one (APESA) for one person."""
    main = make_decision(AssociationId.SECOND_SOUFFLE, reference=reference)
    distress = make_decision(AssociationId.APESA, reference=main.reference)
    return main, distress.model_copy(update={"track": "distress"})


async def _after(bootstrap: str, box: MailBox, decision, sent: list[ReferralStatusV1]) -> list[str]:  # type: ignore[no-untyped-def]
    """Publish `sent`, then a reminder of `decision`'s referral as the end marker (the
    association's mail, on the same key, is read after them all; one reminder per referral,
    so each call takes a referral not reminded yet): the person's mails then."""
    for status in sent:
        await _send(bootstrap, REFERRAL_STATUS, status, decision.reference)
    reminded = _status(decision, ReferralStatus.REMINDED, respond_by=datetime.now(UTC))
    await _send(bootstrap, REFERRAL_STATUS, reminded, decision.reference)
    association = f"contact@{decision.referral.association_id.value}.example"
    await poll_until(
        lambda: any(str(m["To"]) == association and "Rappel" in str(m["Subject"])
                    for m in box.about(decision.reference)), 20,
    )  # fmt: skip
    return _to_person(box, decision.reference)


async def test_both_tracks_in_the_human_queue_and_closed_read_as_two_different_mails_then_one(
    kafka_bootstrap: str, notifier: Notifier, smtp_server: MailBox
) -> None:
    """Both tracks (main and APESA) in the human queue, then closed together: the second
    "we'll call you" mail says what differs (one call for both), and the closure is one mail."""
    main, distress = _both_tracks()
    for decision in (main, distress):
        await _send(kafka_bootstrap, DECISIONS, decision, decision.reference)
    await poll_until(lambda: len(_to_person(smtp_server, main.reference)) == 2, 15)
    unrouted = [
        _status(main, ReferralStatus.UNROUTED),
        _status(distress, ReferralStatus.UNROUTED, track="distress"),
    ]
    await _after(kafka_bootstrap, smtp_server, main, unrouted)
    # The router's closure: one `closed` per queued track, without track or association.
    closed = [
        ReferralStatusV1(reference=d.reference, referral_id=d.referral.referral_id,
                         status=ReferralStatus.CLOSED, at=datetime.now(UTC))
        for d in (main, distress)
    ]  # fmt: skip
    await _after(kafka_bootstrap, smtp_server, distress, closed)  # a marker not used yet
    await poll_until(lambda: len(_to_person(smtp_server, main.reference)) >= 5, 15)
    confirmation, _, first, second, closure = _to_person(smtp_server, main.reference)
    assert "Les associations sollicitées n'ont pas pu prendre votre demande en charge." in first
    assert "Les psychologues d'APESA n'ont pas pu donner suite non plus." in second
    assert "une seule personne de l'équipe vous rappellera, d'ici 3 jours ouvrés" in second
    assert "est désormais close" in closure
    for mail in (confirmation, first, second, closure):  # NOTIFIER_PRIVACY_CONTACT, in each
        assert "Écrivez à donnees@portail-rebond.fr." in mail
    subjects = [str(m["Subject"]) for m in smtp_server.about(main.reference)
                if str(m["To"]) == "claire@example.org"]  # fmt: skip
    assert len(set(subjects)) == len(subjects) == 5
    told = await notifier.store.told([main.reference])
    assert [t.kind for t in told[main.reference]].count("p_closed") == 1


async def test_both_tracks_accepted_the_second_mail_says_there_are_two_calls(
    kafka_bootstrap: str, notifier: Notifier, smtp_server: MailBox
) -> None:
    """APESA accepts, then the main association: the second acceptance says that its call
    comes besides the psychologist's, and which is which."""
    main, distress = _both_tracks()
    for decision in (main, distress):
        await _send(kafka_bootstrap, DECISIONS, decision, decision.reference)
    await poll_until(lambda: len(_to_person(smtp_server, main.reference)) == 2, 15)
    accepted = [
        _status(distress, ReferralStatus.ACCEPTED, track="distress"),
        _status(main, ReferralStatus.ACCEPTED, caller="Marc"),
    ]
    await _after(kafka_bootstrap, smtp_server, distress, accepted)
    await poll_until(lambda: len(_to_person(smtp_server, main.reference)) >= 4, 15)
    _, _, apesa, second_souffle = _to_person(smtp_server, main.reference)
    assert "Un·e psychologue d'APESA va vous appeler" in apesa and "s'ajoute" not in apesa
    assert "Marc, de Second Souffle, vous contactera" in second_souffle
    assert "s'ajoute à celui du ou de la psychologue d'APESA" in second_souffle


async def test_a_referral_for_an_antenna_and_its_next_steps_reach_the_antenna(
    kafka_bootstrap: str,
    notifier: Notifier,
    smtp_server: MailBox,
    webhook_receiver: WebhookReceiver,
) -> None:
    """A referral naming 60 000 rebonds' Gironde antenna is e-mailed to the antenna's address
    and posted to the antenna's webhook (signed with the association's secret), and so are its
    reminder, its expiry and its withdrawal; nothing goes to the association's own address,
    which a referral without an antenna still reaches. An antenna without a webhook of its own
    gets the e-mail, and the association's webhook the post."""
    antenna = AntennaV1(
        name="Antenne Gironde", email="gironde@60000rebonds.example",
        webhook_url=f"{webhook_receiver.url}/hooks/gironde",
    )  # fmt: skip
    plain = make_decision(AssociationId.SOIXANTE_MILLE_REBONDS)
    decision = make_decision(AssociationId.SOIXANTE_MILLE_REBONDS)
    assert decision.referral is not None
    decision = decision.model_copy(
        update={"referral": decision.referral.model_copy(update={"antenna": antenna})}
    )
    hookless = make_decision(AssociationId.SOIXANTE_MILLE_REBONDS)
    assert hookless.referral is not None
    hookless = hookless.model_copy(
        update={"referral": hookless.referral.model_copy(
            update={"antenna": antenna.model_copy(update={"webhook_url": None})}
        )}
    )  # fmt: skip
    for sent in (plain, hookless, decision):
        await _send(kafka_bootstrap, DECISIONS, sent, sent.reference)
    # The offer first (days before its reminder, in life): its antenna is noted with it.
    await webhook_receiver.wait_for(decision.reference, 1, within_s=30)
    soon = datetime.now(UTC) + timedelta(days=1)
    for status, fields in ((ReferralStatus.REMINDED, {"respond_by": soon}),
                           (ReferralStatus.EXPIRED, {})):  # fmt: skip
        await _send(
            kafka_bootstrap, REFERRAL_STATUS, _status(decision, status, **fields),
            decision.reference,
        )  # fmt: skip
    await webhook_receiver.wait_for(decision.reference, 3)
    erasure = ErasureRequestedV1(reference=decision.reference, requested_at=datetime.now(UTC))
    await _send(kafka_bootstrap, ERASURES, erasure, decision.reference)
    hooks = await webhook_receiver.wait_for(decision.reference, 4)
    assert {h.path for h in hooks} == {"/hooks/gironde"}
    assert sorted(json.loads(h.body)["type"] for h in hooks) == [
        "fr.rebond.referral.expired", "fr.rebond.referral.offered",
        "fr.rebond.referral.reminder", "fr.rebond.referral.withdrawn",
    ]  # fmt: skip
    for hook in hooks:
        Webhook(HOOK_SECRET).verify(hook.body, hook.headers)

    def to_association() -> list[tuple[str, str]]:
        return [
            (str(m["To"]), str(m["Subject"]))
            for m in smtp_server.about(decision.reference)
            if str(m["To"]) != "claire@example.org"
        ]

    await poll_until(lambda: len(to_association()) >= 4, 15)
    assert {to for to, _ in to_association()} == {"gironde@60000rebonds.example"}
    assert any("retirée" in subject for _, subject in to_association())
    [offer] = [m for m in smtp_server.about(decision.reference) if "Nouvelle" in str(m["Subject"])]
    assert "Bonjour 60 000 rebonds (Antenne Gironde)," in offer.get_content()
    await poll_until(lambda: len(smtp_server.about(plain.reference)) >= 2, 15)
    assert "contact@60000-rebonds.example" in {
        str(m["To"]) for m in smtp_server.about(plain.reference)
    }
    assert not [h for h in webhook_receiver.about(plain.reference) if h.path == "/hooks/gironde"]
    [hook] = await webhook_receiver.wait_for(hookless.reference, 1)
    assert hook.path == "/hooks/60000-rebonds"
    await poll_until(lambda: len(smtp_server.about(hookless.reference)) >= 2, 15)
    assert "gironde@60000rebonds.example" in {
        str(m["To"]) for m in smtp_server.about(hookless.reference)
    }
