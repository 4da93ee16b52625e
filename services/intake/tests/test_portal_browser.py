"""The portal's pages in Debian's headless Chromium, with JavaScript on and off, against a real
uvicorn server; each page is audited with axe-core (and photographed for the README:
`rebond_testing.browser.screenshot_path`)."""

import asyncio
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from pydantic import BaseModel

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import Reason, ReferralStatus, ReferralStatusV1, RoutingOutcomeV1
from rebond_intake.app import build
from rebond_intake.settings import IntakeSettings
from rebond_intake.store import SqlStatusStore
from rebond_intake.timeline import record_of
from rebond_testing.browser import screenshot_path, serious_violations
from rebond_testing.serving import served


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> IntakeSettings:
    return IntakeSettings(
        data_dir=tmp_path_factory.mktemp("intake"), rate_limit_per_minute=0, status_refresh_s=1
    )


@pytest.fixture(scope="module")
def portal_url(settings, fake_publisher_class) -> Iterator[str]:
    """Intake served by uvicorn on a free port, with a fake publisher and a SQLite store."""
    with served(build(settings, publisher=fake_publisher_class()).web) as url:
        yield url


@pytest.fixture(scope="module")
def browser(chromium_launch_options):
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_launch_options)
        yield browser
        browser.close()


@pytest.fixture(params=[True, False], ids=["js", "nojs"])
def js(request) -> bool:
    """Each page test runs with JavaScript on, then off."""
    return bool(request.param)


@pytest.fixture
def page(js, browser, portal_url) -> Iterator[Page]:
    """A phone-sized page; CSP bypassed only so that the test can inject axe-core."""
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, locale="fr-FR",
        java_script_enabled=js, bypass_csp=True,
    )  # fmt: skip
    page = context.new_page()
    page.goto(portal_url + "/")
    expect(page.locator("#questionnaire")).to_be_visible()
    yield page
    context.close()


def audit(page: Page, axe_source: str, name: str, js: bool) -> None:
    """No serious or critical axe-core violation on the page; axe needs JavaScript, so the
    audit (and the README's screenshot) is of the JavaScript run."""
    if not js:
        return
    if path := screenshot_path(name):
        page.screenshot(path=path, full_page=True)
    assert serious_violations(page, axe_source) == []


def fill_valid(page: Page, email: str = "claire@example.org", distress: str = "Non") -> None:
    page.get_by_label(distress, exact=True).check()
    page.get_by_label("Votre entreprise a été liquidée ou cédée").check()
    page.get_by_label("1 à 9 salariés").check()
    page.get_by_label("Votre région *").select_option("75")
    page.get_by_label("Votre département (facultatif)").select_option("33")
    page.get_by_label("Un parrain ou une marraine").check()
    page.get_by_label(re.compile("J'accepte que mes réponses et mes coordonnées")).check()
    page.get_by_label(re.compile("^Prénom")).fill("Claire")
    page.get_by_label("Par e-mail").check()
    page.get_by_label("Adresse e-mail (facultatif)").fill(email)


def send(page: Page) -> None:
    page.get_by_role("button", name="Envoyer mes réponses").click()


def test_questionnaire_page_is_whole_and_accessible(js: bool, page: Page, axe_source: str) -> None:
    """The form, the departments by name, the 3114 footer and the privacy link are on the page."""
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("#questions > *").first.get_attribute("id") == "q-distress"
    expect(page.get_by_label("Votre département (facultatif)")).to_contain_text("33 - Gironde")
    expect(page.get_by_label("Votre région *")).to_contain_text("Nouvelle-Aquitaine")
    footer = page.locator("footer")
    expect(footer).to_contain_text("3114")
    expect(footer).to_contain_text("112")
    expect(footer.get_by_role("link", name="Vos données et vos droits")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    audit(page, axe_source, "portail", js)


def test_fill_and_submit_shows_the_reference_secret_and_status(
    js: bool, page: Page, axe_source: str
) -> None:
    """A person submits, sees a reference and a secret to keep, then the pending status page."""
    fill_valid(page)
    send(page)
    reference = page.locator("#reference")
    expect(reference).to_have_text(re.compile(r"^RB-[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$"))
    expect(page.locator("#erasure-secret")).to_have_text(re.compile(r"^[A-Za-z0-9_-]{40,}$"))
    expect(page.locator("main")).to_contain_text("Gardez les deux")
    audit(page, axe_source, "confirmation", js)
    link = page.get_by_role("link", name="Suivre ma demande")
    assert link.get_attribute("href") == "/suivi/" + reference.inner_text()
    link.click()
    expect(page.locator("#timeline")).to_contain_text("Questionnaire reçu.")
    expect(page.get_by_role("link", name="Actualiser")).to_be_visible()
    assert page.locator("noscript").count() == 1  # refreshes itself without JavaScript
    audit(page, axe_source, "suivi", js)


def test_errors_are_summarised_at_the_top_with_links_to_each_field(
    js: bool, page: Page, axe_source: str
) -> None:
    """A faulty form comes back with its values kept, a focused summary linking each field."""
    fill_valid(page, email="claire@")
    page.get_by_label("Un parrain ou une marraine").uncheck()
    send(page)
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    links = summary.get_by_role("link")
    expect(links).to_have_count(2)
    expect(links.nth(0)).to_have_text(
        "De quoi avez-vous besoin ? — Choisissez au moins une réponse."
    )
    expect(links.nth(1)).to_have_text("Adresse e-mail — Cette adresse e-mail n'est pas valide.")
    field = page.get_by_label("Adresse e-mail (facultatif)")
    expect(field).to_have_value("claire@")
    assert field.get_attribute("aria-invalid") == "true"
    links.nth(1).click()
    expect(field).to_be_focused()
    audit(page, axe_source, "erreurs", js)


def test_crisis_words_show_the_3114_first_on_the_confirmation(page: Page) -> None:
    """A message speaking of suicide puts the 3114 and 15/112 at the top of the confirmation."""
    fill_valid(page)
    page.get_by_label(re.compile("^Un mot sur votre situation")).fill("Je pense au suicide.")
    send(page)
    crisis = page.locator("#crisis")
    expect(crisis).to_be_visible()
    expect(crisis).to_contain_text("3114")
    expect(crisis).to_contain_text("112")
    assert page.locator("main > *").first.get_attribute("id") == "crisis"


def test_art9_box_shows_only_when_distress_is_yes_with_javascript(js: bool, page: Page) -> None:
    """With JavaScript, the art. 9 box and the help panel appear only for "Oui"."""
    box = page.get_by_label(re.compile("transmise à APESA, pour que ses psychologues"))
    panel = page.locator("#resources")
    if not js:
        expect(box).to_be_visible()  # without JavaScript its label says when it counts
        expect(page.locator("main")).to_contain_text("cette case est ignorée")
        return
    expect(box).to_be_hidden()
    expect(panel).to_be_hidden()
    page.get_by_label("Oui", exact=True).check()
    expect(box).to_be_visible()
    expect(panel).to_be_visible()
    assert panel.get_attribute("role") == "status"
    page.get_by_label("Non", exact=True).check()
    expect(box).to_be_hidden()


def test_privacy_page(js: bool, page: Page, portal_url: str, axe_source: str) -> None:
    """The privacy notice names the legal bases, the durations, the rights and the CNIL."""
    page.get_by_role("link", name="Vos données et vos droits").click()
    main = page.locator("main")
    for words in ("art. 9.2.a", "30 jours", "11 jours", "CNIL", "rectifi"):
        expect(main).to_contain_text(words)
    audit(page, axe_source, "confidentialite", js)


def test_erasure_with_the_secret_and_the_same_answer_for_unknown_or_wrong(
    js: bool, page: Page, axe_source: str
) -> None:
    """Erasure works with the reference and secret; an unknown reference or a wrong secret get
    the same error."""
    fill_valid(page)
    send(page)
    reference = page.locator("#reference").inner_text()
    secret = page.locator("#erasure-secret").inner_text()
    answers = []
    for ref, code in ((reference, "wrong-secret"), ("RB-AAAA-AAAA-AAAA-AAAA", "wrong-secret")):
        page.locator("footer").get_by_role("link", name=re.compile("effacer mes données")).click()
        page.get_by_label("Référence").fill(ref)
        page.get_by_label("Code secret").fill(code)
        page.get_by_role("button", name=re.compile("Retirer")).click()
        answers.append(page.locator("#error-summary").inner_text())
    assert answers[0] == answers[1] and "ne vont pas ensemble" in answers[0]
    audit(page, axe_source, "effacer", js)
    page.get_by_label("Référence").fill(reference)
    page.get_by_label("Code secret").fill(secret)
    page.get_by_role("button", name=re.compile("Retirer")).click()
    expect(page.locator("#erased-title")).to_have_text("Votre consentement est retiré")
    audit(page, axe_source, "efface", js)


def decide(settings: IntakeSettings, reference: str, *more: BaseModel) -> None:
    """The router's outcome (and `more` events after it) land in intake's SQLite store, as
    its consumer would write them."""
    outcome = RoutingOutcomeV1(
        decision_id=uuid.uuid4(), reference=reference,
        primary=AssociationId.SOIXANTE_MILLE_REBONDS,
        reasons=[Reason(code="stage_after_liquidation", fr="Vous êtes après une liquidation.",
                        en="You are after a liquidation.")],
        decided_at=datetime.now(UTC),
    )  # fmt: skip

    async def add() -> None:
        store = SqlStatusStore(settings.store_url)
        await store.start()
        try:
            for event in (outcome, *more):
                await store.add(record_of(str(uuid.uuid4()), event))
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API holds this thread's loop
        thread.submit(asyncio.run, add()).result()


def test_the_orientation_appears_once_decided(
    js: bool, page: Page, settings: IntakeSettings, axe_source: str
) -> None:
    """Once the router decided, the page shows the association, why and its contact, by itself:
    polled with JavaScript on the confirmation (the page's clock moved on the 15 s the test
    would wait, its timers run at once), refreshed every `status_refresh_s` (here 1 s) without
    it on /suivi."""
    if js:
        page.clock.install()
    fill_valid(page)
    send(page)
    reference = page.locator("#reference").inner_text()
    if not js:
        page.get_by_role("link", name="Suivre ma demande").click()
    expect(page.locator("#orientation")).to_contain_text("Nous cherchons")
    decide(settings, reference)
    if js:
        page.clock.run_for(15_000)
    orientation = page.locator("#orientation")
    expect(orientation).to_contain_text("60 000 rebonds", timeout=15_000)
    expect(orientation).to_contain_text("Vous êtes après une liquidation.")
    expect(orientation.get_by_role("link", name="https://60000rebonds.com/")).to_be_visible()
    if js:
        expect(page.locator("#erasure-secret")).to_be_visible()  # still there to note down
    audit(page, axe_source, "confirmation-orientee", js)


def test_a_person_who_gave_only_a_phone_number_reads_every_step_on_the_pages(
    js: bool, page: Page, settings: IntakeSettings, axe_source: str
) -> None:
    """Phone only: the confirmation says no e-mail will come and gives the status page's
    address to bookmark; once accepted, the status page says who will call and by when (the
    e-mail's words)."""
    fill_valid(page, email="")
    page.get_by_label("Par téléphone").check()
    page.get_by_label(re.compile("^Téléphone")).fill("06 12 34 56 78")
    send(page)
    reference = page.locator("#reference").inner_text()
    expect(page.locator("#no-email")).to_contain_text("nous ne pourrons pas vous écrire")
    expect(page.locator("#bookmark")).to_contain_text(f"/suivi/{reference}")
    audit(page, axe_source, "confirmation-telephone", js)
    accepted = ReferralStatusV1(
        reference=reference, referral_id=uuid.uuid4(),
        association_id=AssociationId.SOIXANTE_MILLE_REBONDS, status=ReferralStatus.ACCEPTED,
        at=datetime.now(UTC) + timedelta(seconds=1), caller="Marc",
        call_by=datetime(2027, 1, 14, 17, 30, tzinfo=UTC),
    )  # fmt: skip
    decide(settings, reference, accepted)
    page.goto(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + f"/suivi/{reference}")
    expect(page.locator("#call")).to_contain_text(
        "Marc, de 60 000 rebonds, vous contactera d'ici le 14/01/2027 à 18 h 30"
    )
    audit(page, axe_source, "suivi-accepte", js)
