"""The console in a real headless browser (Debian's Chromium through Playwright) against a real
uvicorn server: a coordinator signs in, claims a queue case and assigns it; every page passes an
axe-core audit with no serious or critical violation. Each page is photographed as
`console-<name>.png` when REBOND_SCREENSHOTS names a folder (`rebond_testing.browser`)."""

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from rebond_coordination import auth, projections
from rebond_coordination.app import build
from rebond_coordination.domain import Role
from rebond_coordination.facts import DirectoryObserved, EffectiveValues, StatisticsFact
from rebond_coordination.fakes import FakeEvents, FakeMailer, FakeOutbound, FakePreview
from rebond_coordination.store import NewUser, Store, migrate
from rebond_testing import free_port
from rebond_testing.browser import screenshot_path
from rebond_testing.serving import served as serving

from .conftest import PASSWORD, offer, queue_case, settings_for


def _pending_moderation() -> FakeEvents:
    """The events API with a story and a volunteer waiting for moderation."""
    from datetime import UTC, datetime

    from rebond_coordination.ports import StoryToModerate, VolunteerToModerate

    events = FakeEvents()
    now = datetime.now(UTC)
    events.stories["s1"] = StoryToModerate(
        id="s1", text="Après la liquidation, un parrain m'a aidé.", region="75",
        stage="after_liquidation", sector="I", failure_year=2019, submitted_at=now,
    )  # fmt: skip
    events.volunteers["v1"] = VolunteerToModerate(
        id="v1", status="pending", pseudonym="Paul", region="75", stage="receivership",
        sector="C", availability="le soir", monthly_limit=2, created_at=now,
    )  # fmt: skip
    return events


@dataclass
class Served:
    url: str
    outbound: FakeOutbound
    case: str
    referral: str


async def seed(url: str) -> tuple[str, str]:
    """A coordinator, a case every association declined, a referral, directory values and
    statistics, written before the server starts (the same SQLite file)."""
    store = Store(url)
    now = datetime.now(UTC)
    try:
        await store.create_user(
            NewUser("cora@rebond.test", "Cora Martin", Role.COORDINATOR),
            auth.hash_password(PASSWORD),
            None,
            now,
        )
        await store.create_user(
            NewUser("nina@60000.test", "Nina", Role.MEMBER, "60000-rebonds", ["33"]),
            None,
            None,
            now,
        )
        case = await queue_case(store, now - timedelta(hours=2), urgent=True)
        referral, _ = await offer(
            store, at=now - timedelta(hours=1), respond_by=now + timedelta(days=9)
        )
        for association, capacity in (("60000-rebonds", 12), ("second-souffle", 20), ("apesa", 30)):
            await projections.directory_observed(store, DirectoryObserved(
                association_id=association, rule_set_version="2026.11-1", at=now,
                values=EffectiveValues(paused=False, weekly_capacity=capacity, response_deadline_days=10),
            ))  # fmt: skip
        for index in range(30):
            await projections.statistics_fact(store, StatisticsFact(
                fact_id=f"s-{index}", kind="offered", at=now - timedelta(days=index % 20), consented=True,
                region="75" if index % 3 else "84", stage="after_liquidation",
                association_id=("60000-rebonds", "second-souffle", "apesa")[index % 3],
            ))  # fmt: skip
    finally:
        await store.close()
    return case, referral


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    migrate(url)
    case, referral = asyncio.run(seed(url))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    outbound = FakeOutbound()
    app = build(
        settings_for(url, public_url=base), outbound=outbound, mailer=FakeMailer(),
        preview=FakePreview(), events=_pending_moderation(),
    )  # fmt: skip
    with serving(app.web, port=port):
        yield Served(base, outbound, case, referral)


def audit(page: Page, axe: str, name: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(
            axe
        )  # through the debugging protocol: the page's CSP rightly forbids inline scripts
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"page": name, "id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]  # fmt: skip


def test_a_coordinator_signs_in_claims_a_case_and_assigns_it_on_accessible_pages(
    served: Served, chromium_launch_options: dict[str, Any], axe_source: str
) -> None:
    """Sign in, open the urgent case, claim it, assign it to Second Souffle (the fake outbound
    records it); the error summary takes the focus; every page passes axe-core."""
    violations: list[dict[str, Any]] = []
    hosts: set[str] = set()
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_launch_options)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda request: hosts.add(request.url.split("/")[2]))

        def shot(name: str) -> None:
            violations.extend(audit(page, axe_source, name))
            if path := screenshot_path(f"console-{name}"):
                page.screenshot(path=path, full_page=True)

        page.goto(f"{served.url}/file")
        expect(page).to_have_url(f"{served.url}/connexion?suite=%2Ffile")
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        page.get_by_label("Adresse e-mail").fill("cora@rebond.test")
        page.get_by_label("Mot de passe").fill("pas le bon mot de passe")
        page.get_by_role("button", name="Se connecter").click()
        expect(page.locator(".error-summary")).to_be_focused()
        shot("connexion-erreur")
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()

        expect(page.get_by_role("heading", level=1)).to_have_text("File humaine")
        expect(page.get_by_role("table")).to_contain_text("Urgent")
        shot("file")
        page.get_by_role("link", name=served.case).click()
        expect(page.get_by_text("Plus de parrain disponible en Gironde")).to_be_visible()
        shot("dossier")
        page.get_by_role("button", name="Prendre ce dossier en charge").click()
        expect(page.get_by_role("status")).to_contain_text("Vous avez pris ce dossier en charge")
        page.get_by_role("button", name="Attribuer le dossier").click()
        expect(page.locator(".error-summary")).to_be_focused()
        expect(page.get_by_label("Association", exact=True)).to_have_attribute(
            "aria-invalid", "true"
        )
        shot("dossier-erreur")
        page.get_by_role("link", name="Choisissez l'association à qui confier ce dossier.").click()
        expect(page.get_by_label("Association", exact=True)).to_be_focused()
        page.get_by_label("Association", exact=True).select_option(label="Second Souffle")
        page.get_by_label("Note pour l'association").fill(
            "Rappelée ce matin, d'accord pour un parrain."
        )
        page.get_by_role("button", name="Attribuer le dossier").click()
        expect(page.get_by_role("status").first).to_contain_text("est attribué")
        shot("file-apres")

        for name, path in [
            ("annuaire", "/annuaire"), ("statistiques", "/statistiques"),
            ("boite", "/boite"), ("orientation", f"/boite/{served.referral}"),
            ("conferences", "/conferences/second-souffle"),
            ("nouvelle-conference", "/conferences/second-souffle/nouvelle"),
            ("comptes", "/utilisateurs"), ("journal", "/journal"),
            ("moderation", "/moderation"),
        ]:  # fmt: skip
            page.goto(served.url + path)
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            shot(name)
        page.goto(f"{served.url}/apercu")
        page.get_by_label("Contenu du directory.yaml candidat").fill("version: candidate\n")
        page.get_by_role("button", name="Voir l'effet").click()
        expect(
            page.get_by_text("12 personnes iraient à Second Souffle au lieu de 60 000 rebonds.")
        ).to_be_visible()
        shot("apercu")
        page.goto(f"{served.url}/conferences/second-souffle/nouvelle")
        page.get_by_role("button", name="Créer la conférence").click()
        expect(page.locator(".error-summary")).to_be_focused()
        shot("nouvelle-conference-erreurs")
        page.goto(f"{served.url}/annuaire")
        page.locator("#apesa-weekly_capacity").fill("beaucoup")
        page.get_by_role("button", name="Appliquer à APESA").click()
        expect(page.locator(".error-summary")).to_be_focused()
        shot("annuaire-erreur")
        browser.close()

    (message,) = served.outbound.sent
    assert message.kind == "assign" and message.reference == served.case
    assert message.association_id == "second-souffle"  # type: ignore[union-attr]
    assert hosts == {served.url.split("/")[2]}  # no CDN: nothing fetched elsewhere
    assert violations == [], json.dumps(violations, indent=1, ensure_ascii=False)
