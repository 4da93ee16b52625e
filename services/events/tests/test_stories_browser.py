"""The stories' pages in a real headless browser against a real uvicorn server, audited with
axe-core (no serious or critical violation)."""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from rebond_contracts.topics import COMMUNITY_MAIL
from rebond_testing import until
from rebond_testing.browser import serious_violations

from .conftest import KEYS
from .test_peers import link, sign_up_body
from .test_portal_browser import Portal, portal, schedule  # noqa: F401 (the fixture)
from .test_stories import TEXT, withdrawal_link


@pytest.fixture(scope="module")
def browser(chromium_launch_options: dict[str, Any]) -> Iterator[Browser]:
    """One headless Chromium for the module (a launch takes about 1.3 s here)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_launch_options)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a context of its own that lets axe be injected (an inline script)."""
    context = browser.new_context(bypass_csp=True)
    yield context.new_page()
    context.close()


def audit(page: Page, axe_source: str) -> None:
    assert serious_violations(page, axe_source) == [], page.url


def approve(server: Portal, volunteer_id: str) -> str:
    """A moderator approves the volunteer: the management link e-mailed to them."""
    approved = server.post(
        f"/v1/peers/volunteers/{volunteer_id}/approve",
        headers={"X-API-Key": KEYS["second-souffle"]},
    )
    assert approved.status_code == 200
    mails = until(lambda: server.sink.payloads(COMMUNITY_MAIL.name)[1:], within_s=10)
    return str(re.findall(r"http\S+/gerer\?token=\S+", mails[-1]["text"])[0])


def test_a_story_is_submitted_approved_shown_and_withdrawn(
    portal: Portal,  # noqa: F811
    page: Page,
    axe_source: str,
) -> None:
    """The form's errors, the thanks, the public page filtered after approval, and the
    withdrawal page, in French, each accessible."""
    page.goto(f"{portal.url}/temoignages")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    audit(page, axe_source)
    page.get_by_role("link", name=re.compile("Racontez-nous")).click()
    page.get_by_label("Votre histoire").fill(TEXT)
    page.get_by_label("Adresse e-mail").fill("karim@example.org")
    page.get_by_role("button", name="Envoyer mon témoignage").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Choisissez votre région")
    audit(page, axe_source)
    summary.get_by_role("link", name="Choisissez votre région.").click()
    expect(page.get_by_label("Région")).to_be_focused()
    page.get_by_label("Région").select_option(label="Nouvelle-Aquitaine")
    page.get_by_label("Situation que vous avez traversée").select_option("after_liquidation")
    page.get_by_label("Secteur d'activité").select_option("I")
    page.get_by_label("Année des difficultés").fill("2019")
    page.get_by_label("Prénom (facultatif)").fill("Karim")
    page.get_by_label(re.compile("J'accepte que ce témoignage")).check()
    page.get_by_role("button", name="Envoyer mon témoignage").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Merci pour votre témoignage")

    mails = until(lambda: portal.sink.payloads(COMMUNITY_MAIL.name), within_s=10)
    story_id, token = withdrawal_link(mails[-1]["text"])
    approved = portal.post(
        f"/v1/stories/{story_id}/approve", headers={"X-API-Key": KEYS["second-souffle"]}
    )
    assert approved.status_code == 200
    page.goto(f"{portal.url}/temoignages")
    page.get_by_label("Situation traversée").select_option("after_liquidation")
    page.get_by_role("button", name="Afficher").click()
    expect(page.get_by_role("article", name="Karim, Nouvelle-Aquitaine")).to_be_visible()
    expect(page.get_by_text("karim@example.org")).to_have_count(0)
    audit(page, axe_source)

    page.goto(f"{portal.url}/temoignages/{story_id}/retirer?token={token}")
    audit(page, axe_source)
    page.get_by_role("button", name="Retirer mon témoignage").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Témoignage retiré")
    page.goto(f"{portal.url}/temoignages")
    expect(page.get_by_role("article")).to_have_count(0)


def test_a_volunteer_signs_up_and_manages_their_participation_on_accessible_pages(
    portal: Portal,  # noqa: F811
    page: Page,
    axe_source: str,
) -> None:
    """The sign-up form's errors (each linked to its field), the thanks, the confirmation and
    the pause pages, in French, each accessible."""
    page.goto(f"{portal.url}/evenements")
    page.get_by_role("navigation", name="Rubriques").get_by_role(
        "link", name="Devenir pair"
    ).click()
    audit(page, axe_source)
    page.get_by_label("Prénom ou pseudonyme").fill("Paul")
    page.get_by_role("button", name="Je me propose").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Cochez la case")
    audit(page, axe_source)
    summary.get_by_role(
        "link", name=re.compile(r"^Indiquez une adresse e-mail \(nom@exemple.fr\) ou un")
    ).click()
    expect(page.get_by_label("Adresse e-mail ou téléphone à transmettre")).to_be_focused()
    page.get_by_label("Région", exact=True).select_option(label="Nouvelle-Aquitaine")
    page.get_by_label("Situation que vous avez traversée").select_option("after_liquidation")
    page.get_by_label("Secteur d'activité").select_option("I")
    page.get_by_label("Comment les personnes peuvent vous joindre").select_option("phone")
    page.get_by_label("Adresse e-mail ou téléphone à transmettre").fill("06 12 34 56 78")
    page.get_by_label("Disponibilités", exact=True).fill("le soir en semaine")
    page.get_by_label("Votre adresse e-mail").fill("paul@example.org")
    page.get_by_label(re.compile("J'accepte que mon pseudonyme")).check()
    page.get_by_role("button", name="Je me propose").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Merci de vous proposer")

    mails = until(lambda: portal.sink.payloads(COMMUNITY_MAIL.name), within_s=10)
    confirm = re.findall(r"http\S+/confirmer\?token=\S+", mails[-1]["text"])[0]
    page.goto(confirm)
    audit(page, axe_source)
    page.get_by_role("button", name="Confirmer mon adresse").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Adresse confirmée")
    volunteer_id = confirm.split("/")[4]
    manage = approve(portal, volunteer_id)
    page.goto(manage)
    audit(page, axe_source)
    page.get_by_role("button", name="Faire une pause").click()
    expect(page.get_by_role("status")).to_contain_text("Vous êtes en pause")


def test_a_volunteer_is_listed_on_a_peer_exchange_page_and_withdraws(
    portal: Portal,  # noqa: F811
    page: Page,
    axe_source: str,
) -> None:
    """From their signed-link page an approved volunteer ticks their consent and attends a peer
    exchange session; its public page lists them by pseudonym, region and stage (no contact);
    they withdraw and the page lists nobody. Each page accessible."""
    session = schedule(portal, kind="peer_exchange", title="Échanges entre pairs")
    signed = portal.post("/v1/peers/volunteers", json=sign_up_body("Paul"))
    assert signed.status_code == 202, signed.text
    mails = until(lambda: portal.sink.payloads(COMMUNITY_MAIL.name), within_s=10)
    path, token = link(mails[-1]["text"], "/confirmer")
    volunteer_id = path.split("/")[2]
    confirmed = portal.post(f"/v1/peers/volunteers/{volunteer_id}/confirm", json={"token": token})
    assert confirmed.status_code == 200
    manage = approve(portal, volunteer_id)
    page.goto(manage)
    audit(page, axe_source)
    sessions = page.get_by_role("region", name="Les rencontres entre pairs")
    form = sessions.get_by_role("form", name="Échanges entre pairs")
    form.get_by_label(re.compile("J'y serai")).check()
    form.get_by_role("button", name="Je participerai").click()
    expect(page.get_by_role("status")).to_contain_text("jamais vos coordonnées")

    page.goto(f"{portal.url}/evenements/{session['id']}")
    peers = page.get_by_role("region", name="Des pairs seront là")
    expect(peers.get_by_role("listitem")).to_have_text(
        ["Paul, Nouvelle-Aquitaine : Après une liquidation ou une cession"]
    )
    expect(page.get_by_text("06 12 34 56 78")).to_have_count(0)
    expect(page.get_by_text("paul@example.org")).to_have_count(0)
    audit(page, axe_source)

    page.goto(manage)
    page.get_by_role("button", name="Me retirer de la liste").click()
    expect(page.get_by_role("status")).to_contain_text("Vous ne figurez plus")
    page.goto(f"{portal.url}/evenements/{session['id']}")
    expect(page.get_by_role("region", name="Des pairs seront là")).to_have_count(0)
