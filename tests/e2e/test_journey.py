"""The person's side end to end (issue 20), on the real broker, real SMTP and real HTTP: three
people go through the portal's server-rendered form, the associations answer with their e-mails'
links, and each person's e-mails and status page are read as they would read them.

(a) accepted by the first association, then asked whether they were contacted and answering
"Non": the case reaches the human queue; (b) declined twice: told each time, then who will call
back; (c) distress with the art. 9 consent and crisis words: the 3114 at once, APESA and the
best-suited association both referred, APESA never on the public status page.

Each person has a fresh e-mail address and a free text of their own, so the shared mail sink and
topics are read for them alone.
"""

import json
import re
import uuid
from collections.abc import Mapping
from email.message import EmailMessage
from html import unescape
from typing import Any

import httpx
import pytest

from rebond_contracts.associations import ASSOCIATION_NAMES, AssociationId
from rebond_contracts.questionnaire import EXAMPLE_QUESTIONNAIRE
from rebond_contracts.topics import FOLLOW_UPS, UNROUTED
from rebond_testing import Mail, TopicProbe, headers, until_async
from rebond_testing.mail import link_in

from .conftest import ASSOCIATIONS, FOLLOW_UP_AFTER_S, Pipeline

pytestmark = pytest.mark.kafka

APESA = "APESA"


def _form(questionnaire: Mapping[str, Any], prefix: str = "") -> dict[str, str | list[str]]:
    """The portal form's fields for `questionnaire`, as a browser posts them: one field per
    question id, a ticked box as "on" (an unticked one is not posted), a list as repeated
    values."""
    fields: dict[str, str | list[str]] = {}
    for key, value in questionnaire.items():
        name = f"{prefix}{key}"
        if key == "locale" or value is None or value is False:
            continue
        if isinstance(value, Mapping):
            fields |= _form(value, f"{name}.")
        elif value is True:
            fields[name] = "on"
        elif isinstance(value, list):
            fields[name] = [str(v) for v in value]
        else:
            fields[name] = str(value)
    return fields


def _person(tag: str, **changes: Any) -> tuple[dict[str, Any], str, str]:
    """EXAMPLE_QUESTIONNAIRE for a fresh person: their questionnaire, address and free text."""
    email = f"journey-{tag}-{uuid.uuid4().hex[:12]}@example.org"
    message = f"Message libre {uuid.uuid4().hex} : liquidation close, je veux rebondir."
    questionnaire: dict[str, Any] = json.loads(json.dumps(EXAMPLE_QUESTIONNAIRE))
    questionnaire["contact"]["email"] = email
    questionnaire["message"] = message
    # Events' invitations (a conference another test announced) are no step of the journey.
    questionnaire["consents"]["event_invitations"] = False
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = questionnaire
        for part in parents:
            target = target[part]
        target[last] = value
    return questionnaire, email, questionnaire["message"]


async def _submit(client: httpx.AsyncClient, questionnaire: Mapping[str, Any]) -> tuple[str, str]:
    """Post the portal's form (no JavaScript): the confirmation page and its reference."""
    page = await client.post("/", data=_form(questionnaire))
    assert page.status_code == 200, page.text
    found = re.search(r'id="reference"[^>]*>([^<]+)<', page.text)
    assert found, page.text
    return page.text, found.group(1)


def _text(message: EmailMessage) -> str:
    return Mail((), message).text


def _link(text: str, label: str, notifier: str) -> str:
    """The link after `label` in a mail, sent to the running notifier (the mails name the
    notifier's public address, which is not this test's port)."""
    url = link_in(text, rf"{re.escape(label)}\s*:\s*(\S+)")
    return f"{notifier}{url.path}"


async def _association_mails(
    run: Pipeline, reference: str, count: int, within_s: float = 40
) -> list[Mail]:
    """The associations' mails about `reference` once there are `count` (in order)."""

    def theirs() -> list[Mail]:
        found = [
            mail
            for mail in run.mail.received()
            if reference in mail.text and any(r.startswith("orientation@") for r in mail.recipients)
        ]
        return found if len(found) >= count else []

    return await until_async(theirs, within_s)


async def _offered(
    run: Pipeline, portal: httpx.AsyncClient, questionnaire: Mapping[str, Any]
) -> tuple[str, Mail]:
    """Submit through the portal's form: the reference and the first association's mail."""
    _, reference = await _submit(portal, questionnaire)
    mails = await _association_mails(run, reference, 1)
    assert mails, f"no association mail for {reference}"
    return reference, mails[0]


def _association_of(mail: Mail) -> AssociationId:
    """The association an association's mail went to (the fixture's `orientation@<id>`)."""
    (recipient,) = mail.recipients
    return AssociationId(recipient.removeprefix("orientation@").removesuffix(".example"))


async def _answer(client: httpx.AsyncClient, link: str, reason: str | None = None) -> None:
    """Open an association's answer link and confirm, as its volunteer does."""
    shown = await client.get(link)
    assert shown.status_code == 200 and "<form method='post'>" in shown.text, shown.text
    confirmed = await client.post(link, data={"reason": reason} if reason else {})
    assert confirmed.status_code == 200, confirmed.text


async def _person_mails(
    run: Pipeline, email: str, subject: str, count: int = 1, within_s: float = 40
) -> list[EmailMessage]:
    """The person's mails whose subject holds `subject`, once there are `count`."""

    def found() -> list[EmailMessage]:
        mails = [m for m in run.mail.to(email) if subject in str(m["subject"])]
        return mails if len(mails) >= count else []

    return await until_async(found, within_s)


def _assert_person_mails(
    run: Pipeline, email: str, reference: str, names: list[str], message: str
) -> None:
    """Every mail the person received names `reference`; each step mail (all but the first
    confirmation) has the `/suivi` link; some mail names each of `names`; none holds the free
    text or the distress answer."""
    texts = [_text(m) for m in run.mail.to(email)]
    assert texts and all(reference in text for text in texts)
    assert all(f"/suivi/{reference}" in text for text in texts[1:]), texts
    for name in names:
        assert any(name in text for text in texts), (name, texts)
    assert not any(message in text or "détresse" in text for text in texts), texts


async def test_a_person_accepted_is_told_then_asked_and_a_no_reaches_the_human_queue(  # type: ignore[no-untyped-def]
    kafka_bootstrap, running_services: Pipeline
) -> None:
    """(a) Accepted through the association's link: the status page names the association,
    the person gets the acceptance then the follow-up, and their "Non" puts the case on
    `referrals.unrouted` with cause `follow_up_not_contacted` (and tells them so)."""
    run = running_services
    questionnaire, email, message = _person("a")
    async with (
        TopicProbe(kafka_bootstrap, [FOLLOW_UPS.name, UNROUTED.name]) as probe,
        httpx.AsyncClient(base_url=run["intake"].url) as portal,
        httpx.AsyncClient() as browser,
    ):
        reference, offered = await _offered(run, portal, questionnaire)
        name = ASSOCIATION_NAMES[_association_of(offered)]
        await _answer(browser, _link(offered.text, "Accepter", run["notifier"].url))

        async def status_names_it() -> bool:
            page = await portal.get(f"/suivi/{reference}")
            return page.status_code == 200 and f"{name} a accepté votre demande" in page.text

        assert await until_async(status_names_it, within_s=30), f"{name} not shown"
        assert await _person_mails(run, email, "a accepté votre demande"), "no acceptance mail"

        asked = await _person_mails(
            run, email, "Avez-vous été contacté", within_s=FOLLOW_UP_AFTER_S + 40
        )
        assert len(asked) == 1, "no follow-up mail"
        no = _link(_text(asked[0]), "- Non", run["notifier"].url)
        shown = await browser.get(no)  # a button to confirm; the POST answers
        assert shown.status_code == 200 and "personne ne m'a contacté" in unescape(shown.text)
        assert "<form method='post'>" in shown.text
        assert (await browser.post(no)).status_code == 200

        answered = await probe.wait_for(reference, where=lambda r: r.topic == FOLLOW_UPS.name)
        assert len(answered) == 1 and json.loads(answered[0].value)["contacted"] is False
        queued = await probe.wait_for(reference, where=lambda r: r.topic == UNROUTED.name)
    assert [json.loads(r.value)["cause"] for r in queued] == ["follow_up_not_contacted"]
    assert await _person_mails(run, email, "L'équipe du portail reprend"), "not told of the queue"
    _assert_person_mails(run, email, reference, [name], message)


async def test_a_person_declined_twice_is_told_each_time_then_who_will_call_back(
    running_services: Pipeline,
) -> None:
    """(b) Both candidates decline through their links: the person is told the request moved
    on, then that the portal's team takes it over and calls back within its working days."""
    run = running_services
    questionnaire, email, message = _person("b")
    async with (
        httpx.AsyncClient(base_url=run["intake"].url) as portal,
        httpx.AsyncClient() as browser,
    ):
        reference, first = await _offered(run, portal, questionnaire)
        await _answer(browser, _link(first.text, "Décliner", run["notifier"].url), "no_capacity")

        mails = await _association_mails(run, reference, 2)
        assert len(mails) == 2, f"no second association for {reference}"
        second = mails[1]
        assert _association_of(second) != _association_of(first)
        second_name = ASSOCIATION_NAMES[_association_of(second)]
        moved = await _person_mails(run, email, "est transmise à")
        assert len(moved) == 1, "no 'moved on' mail"
        assert second_name in _text(moved[0])
        assert f"{ASSOCIATION_NAMES[_association_of(first)]} ne peut pas" in _text(moved[0])

        await _answer(browser, _link(second.text, "Décliner", run["notifier"].url), "other")
        taken = await _person_mails(run, email, "L'équipe du portail reprend")
        assert len(taken) == 1, "no 'the team will call you back' mail"
        assert "vous rappellera d'ici 2 jours ouvrés" in _text(taken[0])
    subjects = [str(m["subject"]) for m in run.mail.to(email)]
    assert len(subjects) == 3, subjects  # confirmation, moved on, taken over
    _assert_person_mails(run, email, reference, [second_name], message)


async def test_a_person_in_distress_sees_the_3114_and_apesa_and_an_association_are_both_referred(  # type: ignore[no-untyped-def]
    kafka_secure, running_services: Pipeline
) -> None:
    """(c) Distress "yes" with the art. 9 consent and crisis words: the confirmation shows the
    3114 at once, APESA and the best-suited association each get the referral (topic and mail),
    and the public status page never names APESA."""
    run = running_services
    questionnaire, _, _ = _person("c", distress="yes", **{"consents.sensitive_data": True})
    questionnaire["message"] += " J'ai des idées suicidaires."
    async with httpx.AsyncClient(base_url=run["intake"].url) as portal:
        confirmation, reference = await _submit(portal, questionnaire)
        crisis = re.search(r'<section id="crisis".*?</section>', confirmation, re.S)
        assert crisis and "3114" in crisis.group(0), confirmation

        mails = await _association_mails(run, reference, 2)
        receivers = {_association_of(mail) for mail in mails}
        assert len(mails) == 2 and "apesa" in receivers, receivers
        (main,) = receivers - {"apesa"}
        assert main in ASSOCIATIONS
        for association in ("apesa", main):
            async with TopicProbe(
                kafka_secure.bootstrap, [f"referrals.{association}"], from_beginning=True,
                **kafka_secure.sasl(f"association-{association}"),
            ) as referrals:  # fmt: skip
                records = await referrals.wait_for(reference)
            assert [headers(r)["ce_type"] for r in records] == ["fr.rebond.referral.offered"]

        async def status_shown() -> str:
            page = await portal.get(f"/suivi/{reference}")
            main_name = ASSOCIATION_NAMES[main]
            return page.text if page.status_code == 200 and main_name in page.text else ""

        status = await until_async(status_shown, within_s=30)
    assert status, "the status page does not name the main association"
    assert APESA not in status.upper(), "the public status page tells the distress answer"
