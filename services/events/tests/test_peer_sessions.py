"""A `peer_exchange` conference lists the volunteers attending, with their consent (issue 24):
an approved volunteer says so from their signed-link page, is listed by pseudonym, region and
stage (never a contact), can withdraw; a pause, a report or an erasure removes them."""

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from rebond_events.privacy import anonymise
from rebond_testing.tokens import forged

from .conftest import Running, running, settings_for
from .test_api import create
from .test_peers import approved_volunteer, link, mails, peer_request, sign_up_body

EventBody = Callable[..., dict[str, Any]]


@pytest.fixture
async def service(sql_url: str) -> AsyncIterator[Running]:
    """The app on each store the service supports (a SQLite file, then PostgreSQL): the lists
    are a join and deletions of their own."""
    async for value in running(settings_for(sql_url)):
        yield value


async def manage_link(service: Running, name: str) -> tuple[str, str, str]:
    """(volunteer id, manage page path, token) of a newly approved volunteer."""
    volunteer_id = await approved_volunteer(service, name)
    path, token = link(mails(service, f"{name.lower()}@example.org")[-1]["text"], "/gerer")
    return volunteer_id, path, token


async def attend(
    service: Running, volunteer_id: str, event_id: str, token: str, listed: bool = True
) -> Any:
    return await service.client.post(
        f"/v1/peers/volunteers/{volunteer_id}/conferences/{event_id}/attend",
        json={"token": token, "listed": listed},
    )


async def listed(service: Running, event_id: str) -> list[dict[str, Any]]:
    response = await service.client.get(f"/v1/events/{event_id}/peers")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def test_an_approved_volunteer_is_listed_with_consent_and_withdraws(
    service: Running, event_body: EventBody
) -> None:
    """Listed by pseudonym, region and stage on the API and the public page, never a contact;
    consent is required (422 naming `listed`); withdrawing removes them."""
    session = await create(service, event_body(kind="peer_exchange"))
    volunteer_id, _, token = await manage_link(service, "Paul")
    refused = await attend(service, volunteer_id, session["id"], token, listed=False)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["detail"]] == ["listed"]
    assert await listed(service, session["id"]) == []

    done = await attend(service, volunteer_id, session["id"], token)
    assert done.json() == {"attending": True}
    again = await attend(service, volunteer_id, session["id"], token)
    assert again.json() == {"attending": True}
    assert await listed(service, session["id"]) == [
        {"pseudonym": "Paul", "region": "75", "stage": "after_liquidation"}
    ]
    page = await service.client.get(f"/evenements/{session['id']}")
    assert "Des pairs seront là" in page.text
    assert "Paul, Nouvelle-Aquitaine" in page.text
    assert "Après une liquidation ou une cession" in page.text
    assert "06 12 34 56 78" not in page.text and "paul@example.org" not in page.text

    left = await service.client.post(
        f"/v1/peers/volunteers/{volunteer_id}/conferences/{session['id']}/leave",
        json={"token": token},
    )
    assert left.json() == {"attending": False}
    assert await listed(service, session["id"]) == []
    page = await service.client.get(f"/evenements/{session['id']}")
    assert "Des pairs seront là" not in page.text


async def test_only_an_approved_volunteer_on_an_upcoming_peer_exchange_with_a_valid_link(
    service: Running, event_body: EventBody
) -> None:
    """A forged link: 403; another kind of conference, a cancelled one: 409; a volunteer
    waiting for a moderator: 409. Nothing is listed."""
    session = await create(service, event_body(kind="peer_exchange"))
    other = await create(service, event_body(kind="success_stories"))
    cancelled = await create(service, event_body(kind="peer_exchange"))
    await service.client.post(
        f"/v1/events/{cancelled['id']}/cancel", headers=service.headers["second-souffle"]
    )
    volunteer_id, _, token = await manage_link(service, "Paul")
    refused = await attend(service, volunteer_id, session["id"], forged(token))
    assert refused.status_code == 403
    assert (await attend(service, volunteer_id, other["id"], token)).status_code == 409
    assert (await attend(service, volunteer_id, cancelled["id"], token)).status_code == 409

    await service.client.post("/v1/peers/volunteers", json=sign_up_body("Lina"))
    await service.settled()
    path, confirm_token = link(mails(service, "lina@example.org")[-1]["text"], "/confirmer")
    lina = path.split("/")[2]
    # The signed link of Lina's management page, as approval would e-mail it.
    manage_token = service.events.community.links.signed.token("manage-volunteer", lina)
    await service.client.post(path, data={"token": confirm_token})
    assert (await attend(service, lina, session["id"], manage_token)).status_code == 409
    for event in (session, other, cancelled):
        assert await listed(service, event["id"]) == []


async def test_a_pause_a_report_or_an_erasure_removes_them(
    service: Running, event_body: EventBody
) -> None:
    """Paused: off the list (and not back on resuming: listing is asked again); reported by a
    side of a match: off the list; erased: off the list."""
    session = await create(service, event_body(kind="peer_exchange"))
    paul, paul_path, paul_token = await manage_link(service, "Paul")
    lina, _, lina_token = await manage_link(service, "Lina")
    for volunteer_id, token in ((paul, paul_token), (lina, lina_token)):
        assert (await attend(service, volunteer_id, session["id"], token)).status_code == 200
    assert [p["pseudonym"] for p in await listed(service, session["id"])] == ["Paul", "Lina"]

    await service.client.post(paul_path, data={"token": paul_token, "action": "pause"})
    assert [p["pseudonym"] for p in await listed(service, session["id"])] == ["Lina"]
    await service.client.post(paul_path, data={"token": paul_token, "action": "resume"})
    assert [p["pseudonym"] for p in await listed(service, session["id"])] == ["Lina"]

    await service.client.post(paul_path, data={"token": paul_token, "action": "pause"})
    match_id = await service.events.community.request_peer(peer_request())  # Lina's
    assert match_id is not None
    to_lina = [m for m in mails(service, "lina@example.org") if "signaler" in m["text"]][-1]
    report_path, report_token = link(to_lina["text"], "/volunteer/signaler")
    reported = await service.client.post(report_path, data={"token": report_token})
    assert reported.status_code == 200
    assert await listed(service, session["id"]) == []

    await service.client.post(paul_path, data={"token": paul_token, "action": "resume"})
    assert (await attend(service, paul, session["id"], paul_token)).status_code == 200
    await service.client.post(paul_path, data={"token": paul_token, "action": "erase"})
    assert await listed(service, session["id"]) == []
    rows = await service.events.store.database.run(
        lambda c: c.exec_driver_sql("SELECT count(*) FROM peer_attendances").scalar_one()
    )
    assert rows == 0


async def test_the_volunteer_page_offers_the_sessions_and_asks_consent(
    service: Running, event_body: EventBody
) -> None:
    """The signed-link page lists upcoming peer exchange sessions; without the box ticked
    nothing is listed (422); ticked: listed, and the page offers to withdraw; a bad link:
    403."""
    session = await create(
        service, event_body(kind="peer_exchange", title="Échanges entre pairs à Bordeaux")
    )
    await create(service, event_body(kind="conference", title="Une conférence"))
    _, path, token = await manage_link(service, "Paul")
    page = await service.client.get(f"{path}?token={token}")
    assert page.status_code == 200
    assert "Échanges entre pairs à Bordeaux" in page.text and "Une conférence" not in page.text
    assert "Je participerai" in page.text
    bad = await service.client.get(f"{path}?token={token[:-2]}xx")
    assert bad.status_code == 403

    volunteer_id = path.split("/")[2]
    action = f"/pairs/{volunteer_id}/rencontres/{session['id']}"
    unticked = await service.client.post(action, data={"token": token, "action": "attend"})
    assert unticked.status_code == 422 and "Cochez la case" in unticked.text
    assert await listed(service, session["id"]) == []
    ticked = await service.client.post(
        action, data={"token": token, "action": "attend", "listed": "yes"}
    )
    assert ticked.status_code == 200 and "jamais vos coordonnées" in ticked.text
    assert [p["pseudonym"] for p in await listed(service, session["id"])] == ["Paul"]
    page = await service.client.get(f"{path}?token={token}")
    assert "Me retirer de la liste" in page.text
    withdrawn = await service.client.post(action, data={"token": token, "action": "leave"})
    assert withdrawn.status_code == 200
    assert await listed(service, session["id"]) == []


async def test_attendances_go_with_the_retention_once_the_conference_is_over(
    service: Running, event_body: EventBody
) -> None:
    """`anonymise` deletes who attended a conference ended more than the retention ago."""
    session = await create(service, event_body(kind="peer_exchange"))
    volunteer_id, _, token = await manage_link(service, "Paul")
    await attend(service, volunteer_id, session["id"], token)
    retention = timedelta(days=30)

    async def left_after(days: int) -> int:
        now = datetime.now(UTC) + timedelta(days=days)
        await service.events.store.database.run(partial(anonymise, now=now, retention=retention))
        return len(await listed(service, session["id"]))

    assert await left_after(50) == 1  # the conference (in 30 days) ended 20 days before
    assert await left_after(70) == 0


async def test_the_volunteer_pages_forms_refuse_a_bad_link_and_what_their_status_forbids(
    service: Running, event_body: EventBody
) -> None:
    """A forged link: "Lien invalide" (403) on both forms of the page; paused, the session form
    says it is not possible now (409); reported by a person, resuming waits for the team (409)."""
    session = await create(service, event_body(kind="peer_exchange"))
    volunteer_id, path, token = await manage_link(service, "Paul")
    action = f"/pairs/{volunteer_id}/rencontres/{session['id']}"
    attend_form = {"action": "attend", "listed": "yes"}
    for url, form in ((action, attend_form), (path, {"action": "pause"})):
        bad = await service.client.post(url, data={"token": forged(token), **form})
        assert bad.status_code == 403 and "Lien invalide" in bad.text, url
    await service.client.post(path, data={"token": token, "action": "pause"})
    paused = await service.client.post(action, data={"token": token, **attend_form})
    assert paused.status_code == 409 and "Pas possible pour l&#39;instant" in paused.text
    assert await listed(service, session["id"]) == []

    await service.client.post(path, data={"token": token, "action": "resume"})
    assert await service.events.community.request_peer(peer_request()) is not None
    report, report_token = link(mails(service, "claire@example.org")[-1]["text"], "/signaler")
    await service.client.post(report, data={"token": report_token})
    held = await service.client.post(path, data={"token": token, "action": "resume"})
    assert held.status_code == 409 and "Pas encore possible" in held.text
