"""Success stories: submission, moderation, the public page and withdrawal (issue 24)."""

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest

from rebond_contracts.topics import COMMUNITY_MAIL
from rebond_events.letters import InvalidToken, SignedLinks
from rebond_events.stories import contact_problem
from rebond_testing.mail import link_in
from rebond_testing.tokens import forged

from .conftest import Running
from .test_edge import limited  # noqa: F401 (the fixture)

TEXT = (
    "Après la liquidation de mon restaurant en 2019, j'ai cru que tout était fini. "
    "Un parrain m'a écouté chaque semaine ; aujourd'hui je dirige une petite cantine."
)


def story(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "text": TEXT, "first_name": "Karim", "region": "75", "stage": "after_liquidation",
        "sector": "I", "failure_year": 2019, "helped": "Mon parrain, et ma famille.",
        "email": "karim@example.org", "consent_publish": True,
    }  # fmt: skip
    body.update(changes)
    return body


async def submit(service: Running, **changes: Any) -> str:
    """Submit a story; returns its id, read from the withdrawal link of its e-mail."""
    response = await service.client.post("/v1/stories", json=story(**changes))
    assert response.status_code == 202, response.text
    await service.settled()
    mail = service.sink.payloads(COMMUNITY_MAIL.name)[-1]
    assert mail["kind"] == "story_received"
    return withdrawal_link(mail["text"])[0]


def withdrawal_link(text: str) -> tuple[str, str]:
    """(story id, token) of the first withdrawal link in an e-mail's text."""
    url = link_in(text, r"(http\S+/retirer\?token=\S+)")
    return url.path.split("/")[2], parse_qs(url.query)["token"][0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Écrivez-moi à karim@example.org", "contains_email"),
        ("Appelez le 06 12 34 56 78", "contains_phone"),
        ("Appelez le +33612345678", "contains_phone"),
        ("Voir https://exemple.fr/moi", "contains_link"),
        ("Mon site : www.karim-cantine.fr", "contains_link"),
        ("Voir karim-cantine.fr", "contains_link"),
        ("En 2019, après 12 ans et 3 procédures, j'ai rebondi.", None),
    ],
)
def test_contact_details_are_refused_in_what_is_published(text: str, problem: str | None) -> None:
    """An address, a phone number or a link in a story's text is named; years and counts pass."""
    assert contact_problem(text) == problem


def test_a_signed_link_is_for_one_purpose_and_one_id() -> None:
    """A token checks for its purpose and id only; another purpose, id or secret is refused."""
    links = SignedLinks("secret")
    token = links.token("withdraw-story", "a")
    links.check("withdraw-story", "a", token)
    for purpose, subject, other in [
        ("withdraw-story", "b", links),
        ("manage-volunteer", "a", links),
        ("withdraw-story", "a", SignedLinks("other")),
    ]:
        with pytest.raises(InvalidToken):
            other.check(purpose, subject, token)


async def test_a_story_is_shown_only_once_approved_and_never_with_its_email(
    service: Running,
) -> None:
    """Pending: not public; approved: on the API and the page, filterable, without the e-mail;
    the author is told and their address is then forgotten."""
    story_id = await submit(service)
    assert (await service.client.get("/v1/stories")).json() == []
    pending = await service.client.get(
        "/v1/moderation/stories", headers=service.headers["second-souffle"]
    )
    assert [s["id"] for s in pending.json()] == [story_id]

    approved = await service.client.post(
        f"/v1/stories/{story_id}/approve", headers=service.headers["second-souffle"]
    )
    assert approved.status_code == 200 and approved.json()["status"] == "published"
    [told] = [
        p for p in service.sink.payloads(COMMUNITY_MAIL.name)
        if p["kind"] == "story_moderated"
    ]  # fmt: skip
    assert told["to"] == "karim@example.org" and "publié" in told["subject"]

    shown = (await service.client.get("/v1/stories?region=75&stage=after_liquidation")).json()
    assert [s["id"] for s in shown] == [story_id] and "email" not in shown[0]
    assert (await service.client.get("/v1/stories?region=11")).json() == []
    page = await service.client.get("/temoignages?region=75")
    assert "Karim, Nouvelle-Aquitaine" in page.text and "karim@example.org" not in page.text
    assert "Karim" not in (await service.client.get("/temoignages?stage=safeguard")).text
    stored = await service.events.community.store.database.run(
        lambda c: c.exec_driver_sql("SELECT email FROM stories").scalar_one()
    )
    assert stored is None


async def test_moderation_needs_a_key_and_an_edit_the_authors_agreement(
    service: Running,
) -> None:
    """No key: 401; an edit without `author_agreed` names the field; with it, the note is kept."""
    story_id = await submit(service)
    anonymous = await service.client.post(f"/v1/stories/{story_id}/approve")
    assert anonymous.status_code == 401
    key = service.headers["60000-rebonds"]
    refused = await service.client.patch(
        f"/v1/stories/{story_id}", json={"text": TEXT + " Merci."}, headers=key
    )
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["detail"]} == {"author_agreed", "note"}
    edited = await service.client.patch(
        f"/v1/stories/{story_id}",
        json={"text": TEXT + " Merci.", "author_agreed": True, "note": "accord par e-mail"},
        headers=key,
    )
    assert edited.status_code == 200
    assert edited.json()["text"].endswith("Merci.")
    assert edited.json()["moderation_note"] == "accord par e-mail"


async def test_a_rejected_story_is_deleted_and_its_author_told(service: Running) -> None:
    """A rejection e-mails the author kindly and deletes the story; a second one is a 404."""
    story_id = await submit(service)
    key = service.headers["second-souffle"]
    assert (
        await service.client.post(f"/v1/stories/{story_id}/reject", headers=key)
    ).status_code == 204
    assert service.sink.payloads(COMMUNITY_MAIL.name)[-1]["kind"] == "story_moderated"
    assert (
        await service.client.post(f"/v1/stories/{story_id}/reject", headers=key)
    ).status_code == 404
    pending = await service.client.get("/v1/moderation/stories", headers=key)
    assert pending.json() == []


async def test_the_author_withdraws_a_published_story_with_the_signed_link(
    service: Running,
) -> None:
    """A forged token: 403, the story stays; the e-mailed one: gone from the API and the page."""
    await submit(service)
    story_id, token = withdrawal_link(service.sink.payloads(COMMUNITY_MAIL.name)[-1]["text"])
    await service.client.post(
        f"/v1/stories/{story_id}/approve", headers=service.headers["second-souffle"]
    )
    refused = await service.client.post(
        f"/v1/stories/{story_id}/withdraw", json={"token": forged(token)}
    )
    assert refused.status_code == 403
    assert len((await service.client.get("/v1/stories")).json()) == 1

    form = await service.client.get(f"/temoignages/{story_id}/retirer?token={token}")
    assert "Retirer mon témoignage" in form.text  # a button to click, not an action
    done = await service.client.post(f"/temoignages/{story_id}/retirer", data={"token": token})
    assert done.status_code == 200 and "effacé" in done.text
    assert (await service.client.get("/v1/stories")).json() == []
    assert "Karim" not in (await service.client.get("/temoignages")).text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"text": "Trop court."}, "text"),
        ({"text": TEXT + " Écrivez-moi : karim@example.org"}, "text"),
        ({"helped": "Appelez le 06 12 34 56 78"}, "helped"),
        ({"consent_publish": False}, "consent_publish"),
        ({"failure_year": 2999}, "failure_year"),
        ({"region": "99"}, "region"),
        ({"email": "pas-une-adresse"}, "email"),
    ],
)
async def test_bad_input_names_its_field(
    service: Running, changes: dict[str, Any], field: str
) -> None:
    """The API refuses bad input with 422 naming the field, and stores nothing."""
    response = await service.client.post("/v1/stories", json=story(**changes))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]] == [field]


async def test_the_form_shows_an_error_summary_linking_each_field(service: Running) -> None:
    """A refused form comes back (422) with what was typed, and a summary whose links point to
    the fields; a good one thanks the author in French then English."""
    page = await service.client.post(
        "/temoignages/proposer", data={"text": TEXT, "region": "75", "email": "karim@example.org"}
    )
    assert page.status_code == 422 and 'role="alert"' in page.text
    for field in ("stage", "sector", "failure_year", "consent_publish"):
        assert f'href="#story-{field}"' in page.text and f'id="story-{field}"' in page.text
    assert "karim@example.org" in page.text  # kept in the field, not lost
    good = {**story(), "failure_year": "2019", "consent_publish": "yes"}
    thanks = await service.client.post("/temoignages/proposer", data=good)
    assert thanks.status_code == 200
    assert thanks.text.index("Merci pour votre témoignage") < thanks.text.index("Thank you")


async def test_the_public_form_is_limited_in_rate_and_size(
    limited: Running,  # noqa: F811
) -> None:
    """A story over the body limit gets 413; past the burst, the form gets a French 429 page."""
    too_big = await limited.client.post("/v1/stories", json=story(text="x" * 4000))
    assert too_big.status_code == 413
    await limited.client.post("/temoignages/proposer", data={"text": "a"})
    page = await limited.client.post(
        "/temoignages/proposer", data={"text": "a"}, headers={"accept": "text/html"}
    )
    assert page.status_code == 429 and "réessayer dans une minute" in page.text


async def test_a_success_stories_evening_features_published_stories_of_its_region(
    service: Running, event_body: Callable[..., dict[str, Any]]
) -> None:
    """A `success_stories` conference's page quotes approved stories of its region, not pending
    ones nor other regions'; another kind of conference quotes none."""
    shown = await submit(service)
    await submit(service, text=TEXT + " (pas encore relu)")
    await submit(service, text=TEXT + " (en Bretagne)", region="53")
    key = service.headers["second-souffle"]
    await service.client.post(f"/v1/stories/{shown}/approve", headers=key)
    for region_story in (await service.client.get("/v1/moderation/stories", headers=key)).json():
        if "Bretagne" in region_story["text"]:
            await service.client.post(f"/v1/stories/{region_story['id']}/approve", headers=key)
    evening = (await service.client.post("/v1/events", json=event_body(), headers=key)).json()
    page = (await service.client.get(f"/evenements/{evening['id']}")).text
    assert "Ils sont passés par là" in page and "une petite cantine." in page
    assert "pas encore relu" not in page and "en Bretagne" not in page
    other = (
        await service.client.post("/v1/events", json=event_body(kind="conference"), headers=key)
    ).json()
    assert (
        "Ils sont passés par là"
        not in (await service.client.get(f"/evenements/{other['id']}")).text
    )
