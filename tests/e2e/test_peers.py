"""The peer exchange end to end (issue 24), on the real broker, real SMTP and real HTTP: a
volunteer signs up on the events service, confirms their address with the e-mailed link and is
approved with an organiser's key; a person asking for `peer_support` submits the portal's form;
the router asks events for a peer, events matches them and writes both introductions, the
notifier sends them, and the person's status page shows the peer proposed.

The volunteer and the person have fresh addresses, so the shared mail sink is read for them
alone.
"""

import re
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from rebond_testing import Mail, until_async

from .conftest import Pipeline
from .test_journey import _person, _submit

pytestmark = pytest.mark.kafka

#: An organiser key the events service accepts in development and tests.
ORGANISER_KEY = {"X-API-Key": "dev-key-apesa"}


async def _mails_to(run: Pipeline, address: str, words: str, within_s: float = 40) -> list[Mail]:
    """The mails to `address` whose text has `words`, once there is one."""

    def found() -> list[Mail]:
        return [m for m in run.mail.received() if address in m.recipients and words in m.text]

    return await until_async(found, within_s)


def _path_of(text: str, pattern: str) -> str:
    """The path and query of the first link matching `pattern` (the mails name the events
    service's public address, which is not this test's port)."""
    found = re.search(rf"https?://\S*{pattern}\S*", text)
    assert found, f"no link like {pattern!r} in {text}"
    url = urlsplit(found.group(0))
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
    pseudonym = f"Paul {''.join(chr(ord('a') + int(c, 16) % 26) for c in tag[:6])}"
    phone = "06 12 34 56 78"
    questionnaire, email, _ = _person(
        "peer", needs=["mentoring", "peer_support"], **{"contact.phone": None}
    )
    situation = questionnaire["situation"]
    async with (
        httpx.AsyncClient(base_url=run["events"].url) as events,
        httpx.AsyncClient(base_url=run["intake"].url) as portal,
    ):
        signed = await events.post("/v1/peers/volunteers", json={
            "pseudonym": pseudonym, "region": situation["region"], "stage": situation["stage"],
            "sector": situation["sector"], "contact_channel": "phone", "contact": phone,
            "email": volunteer_email, "availability": "le soir en semaine",
            "monthly_limit": 10, "consent": True,
        })  # fmt: skip
        assert signed.status_code == 202, signed.text
        [confirm_mail] = await _mails_to(run, volunteer_email, "/confirmer")
        confirm = _path_of(confirm_mail.text, "/confirmer")
        volunteer_id = confirm.split("/")[2]
        token = confirm.split("token=")[1]
        confirmed = await events.post(
            f"/v1/peers/volunteers/{volunteer_id}/confirm", json={"token": token}
        )
        assert confirmed.json() == {"status": "pending"}
        approved = await events.post(
            f"/v1/peers/volunteers/{volunteer_id}/approve", headers=ORGANISER_KEY
        )
        assert approved.json() == {"status": "approved"}

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
