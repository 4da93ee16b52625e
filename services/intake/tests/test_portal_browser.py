"""The portal page in Debian's headless Chromium, against a real uvicorn server."""

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from rebond_intake.app import build
from rebond_intake.settings import IntakeSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory, fake_publisher_class) -> Iterator[str]:
    """Intake served by uvicorn on a free port, with a fake publisher and a SQLite store."""
    settings = IntakeSettings(
        data_dir=tmp_path_factory.mktemp("intake"), rate_limit_per_minute=0, status_refresh_s=5
    )
    app = build(settings, publisher=fake_publisher_class()).web
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(chromium_launch_options):
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_launch_options)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, portal_url) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="fr-FR")
    page = context.new_page()
    page.goto(portal_url + "/")
    expect(page.locator("#questionnaire")).to_be_visible()
    yield page
    context.close()


def fill_valid(page: Page, email: str = "claire@example.org") -> None:
    page.get_by_label("Non", exact=True).check()
    page.get_by_label("Après une liquidation ou une cession").check()
    page.get_by_label("1 à 9 salariés").check()
    page.get_by_label("Votre région *").select_option("75")
    page.get_by_label("Votre département (facultatif)").select_option("33")
    page.get_by_label("Être parrainé").check()
    page.get_by_label(re.compile("J'accepte que mes réponses et mes coordonnées")).check()
    page.get_by_label(re.compile("^Prénom")).fill("Claire")
    page.get_by_label("Par e-mail").check()
    page.get_by_label("Adresse e-mail (facultatif)").fill(email)


def test_fill_and_submit_shows_the_reference_and_status_link(page: Page) -> None:
    """A person fills the form with labelled fields, submits, sees a reference and its status."""
    assert page.locator("html").get_attribute("lang") == "fr"
    first = page.locator("#questions > *").first
    assert first.get_attribute("id") == "q-distress"
    fill_valid(page)
    page.get_by_role("button", name="Envoyer mes réponses").click()
    reference = page.locator("#reference")
    expect(reference).to_have_text(re.compile(r"^RB-[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$"))
    link = page.get_by_role("link", name="Suivre ma demande")
    assert link.get_attribute("href") == "/suivi/" + reference.inner_text()
    link.click()
    expect(page.locator("#timeline")).to_contain_text("Questionnaire reçu.")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_after_submit_the_erasure_secret_is_shown_once_with_its_explanation(page: Page) -> None:
    """The page shows the erasure secret and says it will not be shown again; a reload does not."""
    fill_valid(page)
    page.get_by_role("button", name="Envoyer mes réponses").click()
    secret = page.locator("#erasure-secret")
    expect(secret).to_have_text(re.compile(r"^[A-Za-z0-9_-]{40,}$"))
    expect(page.locator("#erasure")).to_contain_text("ne sera plus jamais affiché")
    page.reload()
    expect(page.locator("#erasure")).to_be_hidden()


def test_bad_email_shows_its_error_next_to_the_field(page: Page) -> None:
    """The 422 for a bad e-mail is shown under the e-mail field, which is marked invalid."""
    fill_valid(page, email="claire@")
    page.get_by_role("button", name="Envoyer mes réponses").click()
    error = page.locator("#q-contact-email-error")
    expect(error).to_have_text("Cette adresse e-mail n'est pas valide.")
    field = page.get_by_label("Adresse e-mail (facultatif)")
    assert field.get_attribute("aria-invalid") == "true"
    assert "q-contact-email-error" in field.get_attribute("aria-describedby")
    expect(field).to_be_focused()
    expect(page.locator("#reference")).to_be_hidden()


def test_distress_yes_shows_resources_at_once(page: Page) -> None:
    """Answering yes to the distress question shows 3114, 15/112 and APESA before submitting."""
    resources = page.locator("#resources")
    expect(resources).to_be_hidden()
    page.get_by_label("Oui", exact=True).check()
    expect(resources).to_be_visible()
    expect(resources).to_contain_text("3114")
    expect(resources).to_contain_text("112")
    expect(resources).to_contain_text("APESA")


def test_form_is_usable_with_the_keyboard(page: Page) -> None:
    """Tab reaches the first distress option and Space selects it."""
    page.locator("body").focus()
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "distress":
            break
    assert page.evaluate("document.activeElement.name") == "distress"
    page.keyboard.press("Space")
    assert page.evaluate("document.activeElement.checked") is True
