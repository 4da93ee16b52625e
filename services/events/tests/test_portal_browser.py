"""The portal in a real headless browser (Debian's Chromium) against a real uvicorn server."""

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from rebond_contracts.topics import REGISTRATIONS
from rebond_events.app import build
from rebond_testing import free_port, until

from .conftest import KEYS, FakeSink, in_days, settings_for

#: How long a test waits for the portal's answer to a call it makes itself (not the page's).
#: httpx's default, 5 s, was once too short for a volunteer's confirmation under `make test`,
#: where these tests run at nice 19 beside the broker tiers (ReadTimeout, fresh-clone run of
#: 2026-12-07 18:38); they check what the portal answers, not how fast.
ANSWER_WITHIN_S = 30.0


class Portal:
    def __init__(self, url: str, sink: FakeSink) -> None:
        self.url = url
        self.sink = sink

    def post(self, path: str, **options: Any) -> httpx.Response:
        """POST `path` to the portal, waiting up to `ANSWER_WITHIN_S` for its answer."""
        return httpx.post(f"{self.url}{path}", timeout=ANSWER_WITHIN_S, **options)

    def mails_to(self, email: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """The registration events about `email`, once the server's background publish of the
        last request has put at least one in the sink."""

        def found() -> list[dict[str, Any]]:
            return [p for p in self.sink.payloads(REGISTRATIONS.name) if p["email"] == email]

        return until(found, within_s=timeout_s, every_s=0.05)


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[Portal]:
    """uvicorn serving the events app on a free port, in a thread; events to a fake sink."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sink = FakeSink()
    settings = settings_for(f"sqlite:///{tmp_path / 'portal.db'}", public_base_url=url)
    server = uvicorn.Server(
        uvicorn.Config(
            build(settings, send=sink.send).web, host="127.0.0.1", port=port, log_config=None
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert until(lambda: server.started, within_s=30, every_s=0.05), "uvicorn did not start"
    try:
        yield Portal(url, sink)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def schedule(portal: Portal, **changes: Any) -> dict[str, Any]:
    body = {
        "title": "Rebondir après une liquidation", "kind": "success_stories",
        "description": "Trois entrepreneurs racontent comment ils ont rebondi.",
        "starts_at": in_days(30).isoformat(), "ends_at": in_days(30, 20, 30).isoformat(),
        "venue_address": "12 place de la Bourse", "city": "Bordeaux",
        "region": "75", "department": "33", "capacity": 1, **changes,
    }  # fmt: skip
    response = portal.post("/v1/events", json=body, headers={"X-API-Key": KEYS["second-souffle"]})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def register(page: Page, title: str, name: str, email: str, consent: bool = True) -> None:
    card = page.get_by_role("article", name=title)
    card.get_by_text(f"S'inscrire à « {title} »").click()
    form = card.get_by_role("form")
    form.get_by_label("Nom ou prénom").fill(name)
    form.get_by_label("Adresse e-mail").fill(email)
    if consent:
        form.get_by_label(re.compile("J'accepte")).check()
    form.get_by_role("button", name="Je m'inscris").click()


def test_a_person_finds_an_event_by_region_registers_and_cancels(
    portal: Portal, chromium_launch_options: dict[str, Any]
) -> None:
    """Listing by region, form errors, confirmation, waitlist and cancellation, in French."""
    event = schedule(portal)
    schedule(portal, title="Échanges entre pairs à Paris", kind="peer_exchange",
             region="11", department="75", city="Paris", venue_address="1 rue de Rivoli")  # fmt: skip
    hosts: set[str] = set()
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_launch_options)
        page = browser.new_page()
        page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
        page.goto(f"{portal.url}/")
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.get_by_role("heading", level=1)).to_have_text("Conférences du rebond à venir")
        expect(page.get_by_role("heading", name="Nouvelle-Aquitaine")).to_be_visible()
        expect(page.get_by_role("heading", name="Île-de-France")).to_be_visible()

        page.get_by_label("Région").select_option(label="Île-de-France")
        page.get_by_role("button", name="Afficher").click()
        expect(page.get_by_role("heading", name="Nouvelle-Aquitaine")).to_have_count(0)
        expect(page.get_by_role("article", name="Échanges entre pairs à Paris")).to_be_visible()
        page.get_by_label("Région").select_option(label="Nouvelle-Aquitaine")
        page.get_by_role("button", name="Afficher").click()

        title = event["title"]
        register(page, title, "Claire", "claire@example.org", consent=False)
        expect(page.get_by_role("alert")).to_contain_text("Cochez la case")
        consent_box = page.get_by_label(re.compile("J'accepte"))
        expect(consent_box).to_have_attribute("aria-invalid", "true")
        page.get_by_label("Nom ou prénom").fill("Claire")
        page.get_by_label("Adresse e-mail").fill("claire@example.org")
        consent_box.check()
        page.get_by_role("button", name="Je m'inscris").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Merci, c'est noté")
        expect(page.get_by_role("status")).to_contain_text("lien pour annuler")
        expect(page.get_by_role("link", name="Ajouter à mon agenda (.ics)")).to_be_visible()

        page.goto(f"{portal.url}/evenements?region=75")
        expect(page.get_by_text("Complet : inscription sur liste d'attente")).to_be_visible()
        register(page, title, "Bruno", "bruno@example.org")
        expect(page.get_by_role("heading", level=1)).to_have_text("Merci, c'est noté")

        [confirmed] = portal.mails_to("claire@example.org")
        waiting = portal.mails_to("bruno@example.org")  # the e-mail says what the page did not
        assert [(p["change"], p["waitlist_position"]) for p in waiting] == [("waitlisted", 1)]
        page.goto(confirmed["cancel_url"])
        expect(page.get_by_role("heading", level=1)).to_have_text("Annuler mon inscription")
        page.get_by_role("button", name="Confirmer l'annulation").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Inscription annulée")
        browser.close()

    changes = [(p["email"], p["change"]) for p in portal.sink.payloads(REGISTRATIONS.name)]
    assert changes[-2:] == [("claire@example.org", "cancelled"), ("bruno@example.org", "promoted")]
    assert hosts == {portal.url.split("/")[2]}  # no CDN, nothing fetched elsewhere
