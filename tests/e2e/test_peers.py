"""The peer exchange and the success stories end to end (issue 24), on the real broker, real
SMTP and real HTTP: a volunteer signs up on the events service, confirms their address with the
e-mailed link and is approved with an organiser's key; a person asking for `peer_support`
submits the portal's form; the router asks events for a peer, events matches them and writes
both introductions, the notifier sends them, and the person's status page shows the peer
proposed. The person declines an introduction by its signed link and the next volunteer's
arrives. A story is submitted, approved in the console's `/moderation` (the console running as
a process, as in `test_console`), shown on the public page, then withdrawn by its signed link.

The volunteers, the person and the author have fresh addresses, so the shared mail sink is read
for them alone.
"""

import asyncio
import time
import uuid
from collections.abc import Iterator
from html import unescape
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from rebond_testing import Mail, until_async
from rebond_testing.mail import link_in

from .conftest import Pipeline
from .test_console import Console, running_console, signed_in
from .test_journey import _person, _submit

pytestmark = pytest.mark.kafka

#: An organiser key the events service accepts in development and tests.
ORGANISER_KEY = {"X-API-Key": "dev-key-apesa"}


#: This module's moderator, made by the console's `add-user` (unique: the console's store is
#: the session's, which `test_console`'s accounts may share).
MODERATOR = f"mona-{uuid.uuid4().hex[:8]}@coordination.example"


@pytest.fixture(scope="module")
def console(running_services: Pipeline, _kafka_broker: Any) -> Iterator[Console]:
    with running_console(
        running_services, _kafka_broker, {MODERATOR: ["--name", "Mona", "--role", "coordinator"]}
    ) as running:
        yield running


async def _mails_to(
    run: Pipeline, address: str, words: str, within_s: float = 40, count: int = 1
) -> list[Mail]:
    """The mails to `address` whose text has `words`, once there are `count`."""

    def found() -> list[Mail]:
        mails = [m for m in run.mail.received() if address in m.recipients and words in m.text]
        return mails if len(mails) >= count else []

    return await until_async(found, within_s)


async def _post(client: httpx.AsyncClient, path: str, **kwargs: Any) -> httpx.Response:
    """POST as a polite client: a 429 (the events service limits each client's rate, 20 a
    minute, 10 at once; the folder's runs without the limit) is waited out as its
    `Retry-After` says, a minute at most, then sent again."""
    deadline = time.monotonic() + 60
    while True:
        response = await client.post(path, **kwargs)
        if response.status_code != 429 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))


def _letters(tag: str, length: int = 6) -> str:
    """Letters only from a hex tag: names and public texts refuse digits that look like a
    phone number."""
    return "".join(chr(ord("a") + int(c, 16) % 26) for c in tag[:length])


async def _approved_volunteer(
    run: Pipeline, events: httpx.AsyncClient, pseudonym: str, email: str, situation: dict[str, Any]
) -> str:
    """Sign up with `situation`'s region, stage and sector, confirm by the e-mailed link,
    approve with an organiser's key: the volunteer's id."""
    signed = await _post(events, "/v1/peers/volunteers", json={
        "pseudonym": pseudonym, "region": situation["region"], "stage": situation["stage"],
        "sector": situation["sector"], "contact_channel": "phone", "contact": "06 12 34 56 78",
        "email": email, "availability": "le soir en semaine", "monthly_limit": 10,
        "consent": True,
    })  # fmt: skip
    assert signed.status_code == 202, signed.text
    [confirm_mail] = await _mails_to(run, email, "/confirmer")
    confirm = _path_of(confirm_mail.text, "/confirmer")
    volunteer_id = confirm.split("/")[2]
    token = confirm.split("token=")[1]
    confirmed = await _post(
        events, f"/v1/peers/volunteers/{volunteer_id}/confirm", json={"token": token}
    )
    assert confirmed.json() == {"status": "pending"}
    approved = await _post(
        events, f"/v1/peers/volunteers/{volunteer_id}/approve", headers=ORGANISER_KEY
    )
    assert approved.json() == {"status": "approved"}
    return volunteer_id


def _path_of(text: str, pattern: str) -> str:
    """The path and query of the first link matching `pattern` (the mails name the events
    service's public address, which is not this test's port)."""
    url = link_in(text, rf"(https?://\S*{pattern}\S*)")
    return f"{url.path}?{url.query}"


async def test_a_person_asking_for_a_peer_meets_an_approved_volunteer_by_e_mail(
    running_services: Pipeline,
) -> None:
    """Volunteer signed up, confirmed and approved; a person asking for peer support in the
    same region submits: both get their introduction with only what the other agreed to share
    (and a link to decline or report), and the status page says a peer was proposed."""
    run = running_services
    tag = uuid.uuid4().hex[:10]
    volunteer_email = f"pair-{tag}@example.org"
    pseudonym = f"Paul {_letters(tag)}"
    phone = "06 12 34 56 78"
    questionnaire, email, _ = _person(
        "peer", needs=["mentoring", "peer_support"], **{"contact.phone": None}
    )
    situation = questionnaire["situation"]
    async with (
        httpx.AsyncClient(base_url=run["events"].url) as events,
        httpx.AsyncClient(base_url=run["intake"].url) as portal,
    ):
        await _approved_volunteer(run, events, pseudonym, volunteer_email, situation)

        page, reference = await _submit(portal, questionnaire)
        assert 'id="peer-note"' in page and 'id="stories-link"' in page

        [to_person] = await _mails_to(run, email, "Un pair pour échanger")
        [to_volunteer] = await _mails_to(run, volunteer_email, "Une mise en relation")
        assert pseudonym in to_person.text and phone in to_person.text
        assert volunteer_email not in to_person.text  # the volunteer's own address is theirs
        assert email in to_volunteer.text and questionnaire["contact"]["first_name"] in (
            to_volunteer.text
        )
        assert questionnaire["message"] not in to_volunteer.text  # nothing but the contact
        for mail, side in ((to_person, "person"), (to_volunteer, "volunteer")):
            assert f"/{side}?token=" in mail.text and f"/{side}/signaler?token=" in mail.text

        async def peer_shown() -> str:
            status = await portal.get(f"/suivi/{reference}")
            return status.text if "Un pair vous a été proposé" in status.text else ""

        shown = await until_async(peer_shown, within_s=30)
        assert shown, "no peer step on the status page"
        assert pseudonym not in shown and phone not in shown


async def test_a_decline_by_the_persons_link_proposes_the_next_volunteer(
    running_services: Pipeline,
) -> None:
    """Two approved volunteers of the person's region, stage and sector (a sector no other
    test's volunteer has, so they come before any other); the person declines the first
    introduction with its signed link; the second volunteer's introduction arrives, to both.
    Both volunteers then erase themselves with their own link."""
    run = running_services
    tag = uuid.uuid4().hex[:10]
    questionnaire, email, _ = _person(
        "peer-decline", needs=["peer_support"], **{"contact.phone": None, "situation.sector": "Q"}
    )
    situation = questionnaire["situation"]
    volunteers = {
        f"{name} {_letters(tag)}": f"{name.lower()}-{tag}@example.org" for name in ("Lina", "Marc")
    }
    async with (
        httpx.AsyncClient(base_url=run["events"].url) as events,
        httpx.AsyncClient(base_url=run["intake"].url) as portal,
    ):
        for pseudonym, address in volunteers.items():
            await _approved_volunteer(run, events, pseudonym, address, situation)
        await _submit(portal, questionnaire)

        [first] = await _mails_to(run, email, "Un pair pour échanger")
        [chosen] = [p for p in volunteers if p in first.text]
        [other] = [p for p in volunteers if p != chosen]
        declined = await _post(
            events,
            _path_of(first.text, "/person").split("?")[0],
            data={"token": _path_of(first.text, "/person").split("token=")[1]},
        )
        assert declined.status_code == 200 and "présentons par e-mail" in declined.text

        introductions = await _mails_to(run, email, "Un pair pour échanger", count=2)
        assert other in introductions[-1].text and chosen not in introductions[-1].text
        await _mails_to(run, volunteers[other], "Une mise en relation")

        for address in volunteers.values():
            manage = _path_of((await _mails_to(run, address, "/gerer"))[-1].text, "/gerer")
            erased = await _post(
                events,
                manage.split("?")[0],
                data={"token": manage.split("token=")[1], "action": "erase"},
            )
            assert erased.status_code == 200 and "effacées" in erased.text


async def test_a_story_approved_in_the_console_is_public_until_its_author_withdraws_it(
    running_services: Pipeline, console: Console, chromium_launch_options: dict[str, Any]
) -> None:
    """A story submitted on the events service waits; a coordinator publishes it on the
    console's `/moderation`; the public stories page shows it (without the author's address);
    the author's signed link withdraws it, and the page no longer shows it."""
    run = running_services
    tag = uuid.uuid4().hex[:10]
    first_name = f"Karim {_letters(tag)}".title()
    author = f"auteur-{tag}@example.org"
    text = (
        f"Après la liquidation de mon atelier ({_letters(tag, 10)}), un parrain m'a aidé à "
        "retrouver confiance puis un emploi."
    )
    async with httpx.AsyncClient(base_url=run["events"].url) as events:
        submitted = await _post(events, "/v1/stories", json={
            "text": text, "first_name": first_name, "region": "75",
            "stage": "after_liquidation", "sector": "C", "failure_year": 2019,
            "email": author, "consent_publish": True,
        })  # fmt: skip
        assert submitted.status_code == 202, submitted.text
        [received] = await _mails_to(run, author, "/retirer")
        withdraw = _path_of(received.text, "/retirer")
        assert text not in unescape((await events.get("/temoignages")).text)

        async with signed_in(chromium_launch_options, console, MODERATOR) as page:
            await page.goto(f"{console.url}/moderation")
            await page.get_by_role("button", name=f"Publier le témoignage de {first_name}").click()
            await expect(page.get_by_role("status").first).to_contain_text("C'est validé")

        shown = unescape((await events.get("/temoignages", params={"region": "75"})).text)
        assert text in shown and first_name in shown and author not in shown

        gone = await _post(
            events, withdraw.split("?")[0], data={"token": withdraw.split("token=")[1]}
        )
        assert gone.status_code == 200 and "Témoignage retiré" in gone.text
        assert text not in unescape((await events.get("/temoignages")).text)
