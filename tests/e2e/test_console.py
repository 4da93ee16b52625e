"""The staff console end to end (issues 21 and 22, Done when): headless Chromium against
`python -m rebond_coordination` running as a process beside the real intake, router, notifier
and events (the folder's `running_services`), all on the session's secured broker, each under
its own principal.

A coordinator works a case every association declined through their e-mail links and assigns
it by hand; a pause set in the console stops the association's referrals (measured); a member
of 60 000 rebonds limited to Gironde accepts a Bordeaux case and records the contact, and a
member of another association is refused every URL of it; an organiser's conference reaches the
public events page. Accounts are made by the console's own `add-user` command.

Every wait is a poll for an end marker (a row in a service's store, a record on a topic, a page
saying it), never a fixed sleep. The console is started once for the module (about 5 s).
"""

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import DirectoryOverrideV1
from rebond_contracts.topics import APPLIED, DECISIONS, OVERRIDES, REFERRAL_STATUS
from rebond_coordination.__main__ import add_user
from rebond_coordination.settings import CoordinationSettings
from rebond_testing import TopicProbe, headers, until_async
from rebond_testing.console import accept_and_record_contact, sign_in
from rebond_testing.events import publish_event
from rebond_testing.probe import Record
from rebond_testing.services import RunningService, start_service, stop_service, wait_ready

from .conftest import Pipeline
from .test_journey import _answer, _association_mails, _association_of, _link, _person, _submit

pytestmark = pytest.mark.kafka

PASSWORD = "un mot de passe de console assez long"
SIXTY = AssociationId.SOIXANTE_MILLE_REBONDS
#: The accounts, made with `add-user` as an operator makes them: (email, CLI arguments).
CORA = "cora@coordination.example"
NINA = "nina@60000-rebonds.example"  # member of 60 000 rebonds, Gironde antenna
SAM = "sam@second-souffle.example"  # member of Second Souffle
OTTO = "otto@60000-rebonds.example"  # organiser of 60 000 rebonds
ACCOUNTS = {
    CORA: ["--name", "Cora", "--role", "coordinator"],
    NINA: ["--name", "Nina", "--role", "member", "--association", SIXTY.value,
           "--departments", "33", "--antenna", "Gironde"],
    SAM: ["--name", "Sam", "--role", "member", "--association", "second-souffle"],
    OTTO: ["--name", "Otto", "--role", "organiser", "--association", SIXTY.value],
}  # fmt: skip
#: How soon after the coordinator's click a pause must hold for new questionnaires.
PAUSE_BOUND_S = 10.0


@dataclass
class Console:
    url: str
    service: RunningService


@pytest.fixture(scope="module")
def console(running_services: Pipeline, _kafka_broker: Any) -> Iterator[Console]:
    """The console (`running_console`) with this module's accounts."""
    with running_console(running_services, _kafka_broker, ACCOUNTS) as running:
        yield running


@contextmanager
def running_console(
    run: Pipeline, broker: Any, accounts: dict[str, list[str]]
) -> Iterator[Console]:
    """`python -m rebond_coordination` as the `coordination` principal, reading the folder's
    pipeline and calling its events service with the development organiser keys both share;
    `accounts` made by `add-user` on its store (the password given as the terminal would)."""
    secure = broker.secure
    if secure is None:
        pytest.skip("the console's end-to-end tests need the secured broker (its principals)")
    service = start_service(
        "coordination", secure.bootstrap, run.folder, sasl=secure.sasl("coordination"),
        events_url=run["events"].url, smtp_port=str(run.mail.port), relay_interval_s="0.5",
        sign_in_per_minute="600", sign_in_burst="100",
    )  # fmt: skip
    try:
        wait_ready(service)
        settings = CoordinationSettings(
            environment="test", database_url=f"sqlite:///{run.folder / 'coordination.sqlite3'}"
        )
        for email, arguments in accounts.items():
            assert add_user([email, *arguments], settings, lambda _: PASSWORD) == 0, email
        yield Console(service.url, service)
    finally:
        stop_service(service)


@asynccontextmanager
async def signed_in(
    launch_options: dict[str, Any], console: Console, email: str
) -> AsyncIterator[Page]:
    """A fresh browser signed in to the console as `email`."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**launch_options)
        try:
            page = await browser.new_page()
            await sign_in(page, console.url, email, PASSWORD)
            yield page
        finally:
            await browser.close()


def projected(run: Pipeline, query: str, *args: object) -> Any:
    """A poll of the console's own store: the first row of `query` once there is one."""

    def first() -> Any:
        rows = run.rows("coordination", query, *args)
        return rows[0] if rows else None

    return first


def data(record: Record) -> dict[str, Any]:
    """A record's event data (the value; the envelope's attributes are its `ce_*` headers)."""
    value: dict[str, Any] = json.loads(record.value or b"null")
    return value


def decision_of(records: list[Record]) -> dict[str, Any]:
    return data(records[-1])


async def test_a_coordinator_assigns_by_hand_a_case_every_association_declined(
    running_services: Pipeline, console: Console, kafka_bootstrap: str, kafka_secure: Any,
    chromium_launch_options: dict[str, Any],
) -> None:  # fmt: skip
    """Both candidates decline through their e-mail links; the case shows in the console's
    queue with each association's reason; the coordinator claims it and assigns it to Re-créer
    with a note; Re-créer reads the referral, with the note, on its own topic, and the router's
    decision says rule "manual"."""
    run = running_services
    questionnaire, _, _ = _person("console-declined")
    note = f"Rappelée ce matin ({uuid.uuid4().hex[:6]}) : d'accord pour Re-créer."
    async with (
        TopicProbe(kafka_bootstrap, [DECISIONS.name]) as decisions,
        httpx.AsyncClient(base_url=run["intake"].url) as portal,
        httpx.AsyncClient() as links,
    ):
        _, reference = await _submit(portal, questionnaire)
        tried = []
        for count in (1, 2):
            mails = await _association_mails(run, reference, count)
            assert len(mails) == count, f"no association mail number {count} for {reference}"
            tried.append(_association_of(mails[-1]))
            decline = _link(mails[-1].text, "Décliner", run["notifier"].url)
            await _answer(links, decline, "no_capacity")
        assert "re-creer" not in tried
        queued = projected(run, "SELECT cause FROM cases WHERE reference = ?", reference)
        assert await until_async(queued, within_s=40), f"{reference} not in the console's queue"

        async with signed_in(chromium_launch_options, console, CORA) as page:
            await page.goto(f"{console.url}/file")
            await page.get_by_role("link", name=reference).click()
            await expect(page.get_by_role("heading", level=1)).to_contain_text(reference)
            await expect(page.get_by_text("Toutes les associations ont décliné")).to_be_visible()
            for name in ("60 000 rebonds", "Second Souffle"):
                tried_line = page.get_by_role("listitem").filter(has_text=f"{name} : a décliné")
                await expect(tried_line).to_contain_text("Plus de place")
            await page.get_by_role("button", name="Prendre ce dossier en charge").click()
            await expect(page.get_by_role("status")).to_contain_text("Vous avez pris ce dossier")
            await page.get_by_label("Association", exact=True).select_option(label="Re-créer")
            await page.get_by_label("Note pour l'association").fill(note)
            await page.get_by_role("button", name="Attribuer le dossier").click()
            await expect(page.get_by_role("status").first).to_contain_text("est attribué")

        manual = await decisions.wait_for(reference, where=lambda r: data(r)["rule"] == "manual")
        assert manual, "no manual decision"
        decision = decision_of(manual)
        assert (decision["primary"], decision["note"]) == ("re-creer", note)
        async with TopicProbe(
            kafka_secure.bootstrap, ["referrals.re-creer"], from_beginning=True,
            **kafka_secure.sasl("association-re-creer"),
        ) as referrals:  # fmt: skip
            offered = await referrals.wait_for(reference)
    assert [headers(r)["ce_type"] for r in offered] == ["fr.rebond.referral.offered"]
    referral = data(offered[0])
    assert referral["association_id"] == "re-creer"
    assert [reason["code"] for reason in referral["reasons"]] == ["manual"]
    assert referral["note"] == note


async def _reset_override(kafka_secure: Any, kafka_bootstrap: str, association: str) -> None:
    """The file's values back in force for `association` (an override with no value, as the
    console's writer): every router reads directory.overrides from its beginning, later ones
    included. Returns once the router said it applied it."""
    reset = DirectoryOverrideV1(
        override_id=uuid.uuid4(), association_id=AssociationId(association),
        set_by="console-e2e-reset", set_at=datetime.now(UTC),
    )  # fmt: skip
    event = OVERRIDES.envelope(reset, subject=association, correlationid=association)
    async with TopicProbe(kafka_bootstrap, [APPLIED.name]) as applied:
        await publish_event(
            kafka_secure.bootstrap, OVERRIDES.name, event, association,
            **kafka_secure.sasl("coordination"),
        )  # fmt: skip
        said = await applied.wait_for(
            association,
            where=lambda r: data(r)["override_id"] == str(reset.override_id),
        )
    assert said, f"the router did not apply the reset of {association}"


async def test_a_pause_set_in_the_console_stops_new_referrals_within_seconds(
    running_services: Pipeline, console: Console, kafka_bootstrap: str, kafka_secure: Any,
    chromium_launch_options: dict[str, Any], record_property: Any,
) -> None:  # fmt: skip
    """60 000 rebonds paused from the live directory page: from the click, questionnaires that
    would go to it go to Second Souffle within `PAUSE_BOUND_S`, and the page shows it paused
    once the router confirmed. The file's values are put back at the end."""
    run = running_services
    try:
        async with (
            signed_in(chromium_launch_options, console, CORA) as page,
            TopicProbe(kafka_bootstrap, [DECISIONS.name]) as decisions,
            httpx.AsyncClient(base_url=run["intake"].url) as portal,
        ):
            await page.goto(f"{console.url}/annuaire")
            await page.locator(f"[id='{SIXTY.value}-paused']").select_option("pause")
            await page.locator(f"[id='{SIXTY.value}-note']").fill(
                "Bénévoles en congés cette semaine"
            )
            await page.get_by_role("button", name="Appliquer à 60 000 rebonds").click()
            clicked = time.monotonic()
            await expect(page.get_by_role("status").first).to_contain_text("Ajustement envoyé")

            # Questionnaires 60 000 rebonds would take, one after another, until one goes
            # elsewhere: the time from the click to that decision is the pause's delay.
            routed_to = []
            while time.monotonic() - clicked < PAUSE_BOUND_S:
                _, reference = await _submit(portal, _person("console-pause")[0])
                decided = await decisions.wait_for(reference, within_s=PAUSE_BOUND_S)
                assert decided, f"no decision for {reference}"
                routed_to.append(decision_of(decided)["primary"])
                if routed_to[-1] != SIXTY.value:
                    break
            delay = time.monotonic() - clicked
            record_property("pause_effective_s", round(delay, 2))
            print(f"pause effective {delay:.2f}s after the click; decisions: {routed_to}")
            assert routed_to[-1] == "second-souffle" and delay < PAUSE_BOUND_S, routed_to

            async def shown_paused() -> bool:
                await page.reload()
                row = page.get_by_role("row").filter(has_text="60 000 rebonds").first
                return "En pause" in await row.inner_text()

            assert await until_async(shown_paused, within_s=20), "the console never showed it"
            await _submit_and_check_not_offered(portal, kafka_bootstrap, decisions)
    finally:
        await _reset_override(kafka_secure, kafka_bootstrap, SIXTY.value)


async def _submit_and_check_not_offered(
    portal: httpx.AsyncClient, kafka_bootstrap: str, decisions: TopicProbe
) -> None:
    """A questionnaire submitted while the pause holds: offered to Second Souffle, and nothing
    of it on 60 000 rebonds' topic once Second Souffle has it."""
    _, reference = await _submit(portal, _person("console-paused")[0])
    assert decision_of(await decisions.wait_for(reference))["primary"] == "second-souffle"
    topics = ["referrals.second-souffle", f"referrals.{SIXTY.value}"]
    async with TopicProbe(kafka_bootstrap, topics, from_beginning=True) as referrals:
        offered = await referrals.wait_for(reference)
        everything = await referrals.to_end()
    assert [r.topic for r in offered] == ["referrals.second-souffle"]
    assert [r.topic for r in everything if r.key == reference.encode()] == [topics[0]]


async def test_a_gironde_member_accepts_a_bordeaux_case_records_the_contact_and_others_see_nothing(
    running_services: Pipeline, console: Console, kafka_bootstrap: str,
    chromium_launch_options: dict[str, Any],
) -> None:  # fmt: skip
    """Nina (60 000 rebonds, Gironde) sees the Bordeaux case and not the Lyon one, accepts it
    and records "contacted": the router publishes the acceptance and keeps the outcome, the
    person's status page names the association; Sam (Second Souffle) gets 404 on every URL of
    the case and 403 on the human queue's."""
    run = running_services
    bordeaux_questionnaire, _, _ = _person("console-bordeaux")  # Gironde, as the example
    lyon_questionnaire, _, _ = _person(
        "console-lyon", **{"situation.region": "84", "situation.department": "69"}
    )
    async with (
        TopicProbe(kafka_bootstrap, [DECISIONS.name, REFERRAL_STATUS.name]) as probe,
        httpx.AsyncClient(base_url=run["intake"].url) as portal,
    ):
        _, bordeaux = await _submit(portal, bordeaux_questionnaire)
        _, lyon = await _submit(portal, lyon_questionnaire)
        ids = {}
        for reference in (bordeaux, lyon):
            decided = await probe.wait_for(reference, where=lambda r: r.topic == DECISIONS.name)
            assert decided, f"no decision for {reference}"
            referral = decision_of(decided)["referral"]
            assert referral["association_id"] == SIXTY.value, referral["association_id"]
            ids[reference] = referral["referral_id"]
            inbox = projected(run, "SELECT 1 FROM referrals WHERE referral_id = ?", ids[reference])
            assert await until_async(inbox, within_s=40), f"{reference} not in the inbox"

        async with signed_in(chromium_launch_options, console, NINA) as page:
            await page.goto(f"{console.url}/boite")
            await expect(page.get_by_role("table")).to_contain_text(bordeaux)
            await expect(page.get_by_role("table")).not_to_contain_text(lyon)
            elsewhere = await page.goto(f"{console.url}/boite/{ids[lyon]}")
            assert elsewhere is not None and elsewhere.status == 404
            await page.goto(f"{console.url}/boite")
            await page.get_by_role("link", name=bordeaux).click()
            await accept_and_record_contact(page, "Nina")
            await expect(page.get_by_text("Dernier suivi noté")).to_contain_text("contactée")

        accepted = await probe.wait_for(
            bordeaux,
            where=lambda r: r.topic == REFERRAL_STATUS.name and data(r)["status"] == "accepted",
        )
        assert accepted, "the router published no acceptance"
        status = data(accepted[0])
        assert (status["association_id"], status["referral_id"]) == (SIXTY.value, ids[bordeaux])

        def router_outcome() -> Any:
            rows = run.rows(
                "router", "SELECT outcome FROM router_referrals WHERE referral_id = ?",
                ids[bordeaux],
            )  # fmt: skip
            return rows and rows[0][0] == "contacted"

        assert await until_async(router_outcome, within_s=30), "the router kept no outcome"

        async def status_page_names_it() -> bool:
            page = await portal.get(f"/suivi/{bordeaux}")
            return page.status_code == 200 and "60 000 rebonds a accepté" in unescape(page.text)

        assert await until_async(status_page_names_it, within_s=30), "status page not updated"

    async with signed_in(chromium_launch_options, console, SAM) as page:
        refused = await _statuses(page, console.url, ids[bordeaux], bordeaux)
        await page.goto(f"{console.url}/boite")
        listing = await page.content()
    assert all(code == 404 for path, code in refused.items() if path.startswith("/boite")), refused
    assert all(code == 403 for path, code in refused.items() if path.startswith("/file")), refused
    assert bordeaux not in listing and ids[bordeaux] not in listing


async def _statuses(page: Page, console: str, referral_id: str, reference: str) -> dict[str, int]:
    """The status of every URL of a referral (inbox) and of its reference (human queue), as the
    signed-in `page` gets them; forms posted with the session's own CSRF token, so that only
    access can refuse them."""
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    form: dict[str, str | float | bool] = {
        "answer": "accept",
        "outcome": "contacted",
        "association": "apesa",
        "csrf": csrf or "",
    }
    gets = [f"/boite/{referral_id}", f"/file/{reference}"]
    posts = [f"/boite/{referral_id}/reponse", f"/boite/{referral_id}/suite"] + [
        f"/file/{reference}/{action}" for action in ("prendre", "liberer", "attribuer", "clore")
    ]
    statuses = {path: (await page.request.get(console + path)).status for path in gets}
    for path in posts:
        statuses[path] = (await page.request.post(console + path, form=form)).status
    return statuses


async def test_an_organisers_conference_made_in_the_console_is_on_the_public_events_page(
    running_services: Pipeline, console: Console, chromium_launch_options: dict[str, Any]
) -> None:
    """Otto (organiser, 60 000 rebonds) fills the new-conference form; the events service
    holds it and its public page lists it. It takes place in Guadeloupe, where no test
    questionnaire of this session lives: a conference near them would invite the people of the
    e2e tests that run after this one, and add an e-mail to those they count."""
    title = f"Rebondir après une liquidation ({uuid.uuid4().hex[:6]})"
    day = (datetime.now(UTC) + timedelta(days=45)).date().isoformat()
    async with signed_in(chromium_launch_options, console, OTTO) as page:
        await page.goto(f"{console.url}/conferences/{SIXTY.value}/nouvelle")
        fields = {
            "Titre": title, "Description": "Deux heures d'échanges avec des entrepreneurs "
            "qui ont rebondi.", "Début (heure de Paris)": f"{day}T18:30",
            "Fin (heure de Paris)": f"{day}T20:30", "Adresse du lieu": "2 place de la Victoire",
            "Ville": "Pointe-à-Pitre", "Département": "971", "Nombre de places": "40",
        }  # fmt: skip
        for label, value in fields.items():
            await page.get_by_label(label, exact=True).fill(value)
        await page.get_by_label("Région", exact=True).select_option("01")
        await page.get_by_role("button", name="Créer la conférence").click()
        await expect(page.get_by_role("status").first).to_contain_text("Conférence créée")
        await expect(page.get_by_role("table")).to_contain_text(title)
    async with httpx.AsyncClient(base_url=running_services["events"].url) as public:
        listing = await public.get("/evenements", params={"region": "01"})
    assert listing.status_code == 200 and title in unescape(listing.text)
