"""Issue 22's antenna in a real headless browser (Debian's Chromium through Playwright), the
console plugged into the real, secured broker as the `coordination` principal: a member of
60 000 rebonds limited to the Gironde antenna sees the Bordeaux referral (the one the router
made for the antenna) and not the Lyon one, accepts it and records "contacted"; both reach
`responses.60000-rebonds` as the router reads them. Pages pass axe-core; each is photographed
as `console-<name>.png` when REBOND_SCREENSHOTS names a folder (`rebond_testing.browser`).

That the router names the antenna, and that the notifier e-mails it, are the router's and the
notifier's own tests (`test_rules.py`, `test_journey_kafka.py`)."""

import asyncio
from typing import Any

import pytest
import uvicorn
from playwright.async_api import Page, async_playwright, expect

from rebond_contracts.answers import answer_event_id, outcome_event_id
from rebond_contracts.payloads import (
    AntennaV1,
    OutcomeKind,
    ReferralOutcomeV1,
    ReferralResponseV1,
    ReferralV1,
)
from rebond_contracts.topics import referrals, responses
from rebond_coordination.domain import Role
from rebond_testing import until_async
from rebond_testing.browser import screenshot_path
from rebond_testing.console import accept_and_record_contact, sign_in
from rebond_testing.ports import free_port

from .conftest import PASSWORD
from .test_kafka import SIXTY, a_referral, eventually, plugged, publish, read_back

pytestmark = pytest.mark.kafka

GIRONDE = AntennaV1(name="Antenne Gironde", email="gironde@60000rebonds.example")


async def audit(page: Page, axe: str, name: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(axe)  # the page's CSP rightly forbids inline scripts
    result = await page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {"page": name, "id": v["id"], "impact": v["impact"]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]  # fmt: skip


async def test_a_gironde_member_sees_the_bordeaux_case_not_the_lyon_one_accepts_and_records_contact(
    sqlite_url: str,
    kafka_secure: Any,
    chromium_launch_options: dict[str, Any],
    axe_source: str,
) -> None:
    """Nina, member of 60 000 rebonds limited to the Gironde antenna (department 33), sees in
    Chromium the Bordeaux referral made for that antenna, named in the inbox and on its page,
    and not the Lyon one (whose page
    answers 404, as an unknown one), accepts the Bordeaux one and records "contacted"; the
    acceptance and the outcome are on responses.60000-rebonds with the e-mail links' ids."""
    async with plugged(sqlite_url, kafka_secure) as console:
        await console.user(
            "nina@60000.test", Role.MEMBER, association=SIXTY.value, departments=["33"],
            name="Nina",
        )  # fmt: skip
        await console.user("cora@rebond.test", name="Cora")
        cora = await console.sign_in("cora@rebond.test")
        now = console.clock()
        bordeaux = a_referral(now).model_copy(update={"antenna": GIRONDE})
        lyon = ReferralV1.model_validate(
            {**a_referral(now).model_dump(mode="json"), "region": "84", "department": "69"}
        )
        for referral in (lyon, bordeaux):
            await publish(kafka_secure, "notifier", referrals(SIXTY), referral)

        async def both_in_the_console() -> bool:  # a coordinator sees every inbox
            page = (await cora.get("/boite")).text
            return lyon.reference in page and bordeaux.reference in page

        await eventually(both_in_the_console)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # The console's lifespan (Kafka, relay) is `plugged`'s: uvicorn only serves its pages.
        server = uvicorn.Server(
            uvicorn.Config(console.app.web, host="127.0.0.1", port=port, lifespan="off",
                           log_config=None)
        )  # fmt: skip
        serving = asyncio.create_task(server.serve())
        violations: list[dict[str, Any]] = []
        try:
            assert await until_async(lambda: server.started, 30), "uvicorn did not start"
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(**chromium_launch_options)
                page = await browser.new_page(viewport={"width": 1280, "height": 900})

                async def shot(name: str) -> None:
                    violations.extend(await audit(page, axe_source, name))
                    if path := screenshot_path(f"console-{name}"):
                        await page.screenshot(path=path, full_page=True)

                await sign_in(page, base, "nina@60000.test", PASSWORD)

                await page.goto(f"{base}/boite")
                row = page.get_by_role("row").filter(has_text=bordeaux.reference)
                await expect(row).to_contain_text("Gironde (33) · Antenne Gironde")
                await expect(page.get_by_text(lyon.reference)).to_have_count(0)
                await shot("boite-gironde")
                refused = await page.goto(f"{base}/boite/{lyon.referral_id}")
                assert refused is not None and refused.status == 404

                await page.goto(f"{base}/boite")
                await page.get_by_role("link", name=bordeaux.reference).click()
                await expect(page.get_by_role("heading", level=1)).to_contain_text("Élodie")
                await expect(page.locator("dl.facts")).to_contain_text("Antenne Gironde")
                await shot("orientation-gironde")
                await accept_and_record_contact(page, "Amandine")
                await shot("orientation-suivi")
                await browser.close()
        finally:
            server.should_exit = True
            await serving

        accepted = answer_event_id(bordeaux.referral_id, "accept")
        _, event = await read_back(kafka_secure, responses(SIXTY), lambda e: e.id == accepted)
        assert isinstance(event.data, ReferralResponseV1)
        assert (event.data.referral_id, event.data.caller) == (bordeaux.referral_id, "Amandine")
        contacted = outcome_event_id(bordeaux.referral_id, "contacted")
        _, event = await read_back(kafka_secure, responses(SIXTY), lambda e: e.id == contacted)
        assert isinstance(event.data, ReferralOutcomeV1)
        assert event.data.outcome is OutcomeKind.CONTACTED
        assert event.data.referral_id == bordeaux.referral_id
        # The Lyon referral is still waiting for the association's other members.
        assert "Envoyer ma réponse" in (await cora.get(f"/boite/{lyon.referral_id}")).text
    assert violations == [], violations
