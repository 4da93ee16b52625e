"""Access on every request: each role reaches its own areas (403 elsewhere), and every URL of a
case outside a person's scope answers 404, exactly as an unknown one does."""

from dataclasses import dataclass

import pytest

from rebond_coordination.domain import Role

from .conftest import Browser, Console, offer, queue_case

UNKNOWN = "00000000-0000-0000-0000-000000000000"
EMAILS = [
    "cora@rebond.test", "anne@60000.test", "marc@60000.test", "sam@souffle.test",
    "dana@souffle.test", "olga@souffle.test", "otto@60000.test",
]  # fmt: skip


@dataclass
class World:
    console: Console
    bordeaux: str  # a referral of 60000 rebonds in Gironde (33)
    lyon: str  # a referral of 60000 rebonds in the Rhône (69)
    case: str  # a human queue case
    conference: str  # a conference of Second Souffle
    sam_id: str  # a member of Second Souffle
    browsers: dict[str, Browser]


@pytest.fixture
async def world(console: Console) -> World:
    await console.user("cora@rebond.test", name="Cora")
    await console.user(
        "anne@60000.test", Role.MEMBER, association="60000-rebonds", departments=["33", "24"]
    )
    await console.user("marc@60000.test", Role.MEMBER, association="60000-rebonds")
    sam = await console.user("sam@souffle.test", Role.MEMBER, association="second-souffle")
    await console.user("dana@souffle.test", Role.MEMBER, association="second-souffle", admin=True)
    await console.user("olga@souffle.test", Role.ORGANISER, association="second-souffle")
    await console.user("otto@60000.test", Role.ORGANISER, association="60000-rebonds")
    bordeaux, _ = await offer(console.store, "60000-rebonds", "33", first_name="Bernadette")
    lyon, _ = await offer(console.store, "60000-rebonds", "69", first_name="Louis")
    case = await queue_case(console.store)
    event = await console.events.create_event("second-souffle", {
        "title": "Rebondir ensemble", "kind": "conference", "starts_at": "2027-01-14T18:30",
        "ends_at": "2027-01-14T20:30", "venue_address": "1 rue X", "city": "Bordeaux", "region": "75",
        "department": "33", "capacity": 30,
    })  # fmt: skip
    browsers = {}
    for email in EMAILS:
        name = email.split("@")[0]
        browsers[name] = await console.sign_in(email)
        assert browsers[name].ok, name
    return World(console, bordeaux, lyon, case, event.id, sam.id, browsers)


def referral_urls(referral_id: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/boite/{referral_id}"),
        ("POST", f"/boite/{referral_id}/reponse"),
        ("POST", f"/boite/{referral_id}/suite"),
    ]


def case_urls(reference: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/file/{reference}"),
        ("POST", f"/file/{reference}/prendre"),
        ("POST", f"/file/{reference}/liberer"),
        ("POST", f"/file/{reference}/attribuer"),
        ("POST", f"/file/{reference}/clore"),
    ]


def conference_urls(association: str, event_id: str) -> list[tuple[str, str]]:
    base = f"/conferences/{association}"
    return [
        ("GET", base), ("GET", f"{base}/nouvelle"), ("POST", f"{base}/nouvelle"),
        ("GET", f"{base}/{event_id}/modifier"), ("POST", f"{base}/{event_id}/modifier"),
        ("POST", f"{base}/{event_id}/annuler"), ("GET", f"{base}/{event_id}/inscriptions"),
        ("GET", f"{base}/{event_id}/inscriptions.csv"),
    ]  # fmt: skip


async def status_of(browser: Browser, method: str, path: str) -> tuple[int, str]:
    response = await (
        browser.get(path) if method == "GET" else browser.post(path, {"answer": "accept"})
    )
    return response.status_code, response.text


async def test_another_associations_member_gets_404_on_every_url_of_a_referral(
    world: World,
) -> None:
    """Sam (Second Souffle) on 60 000 rebonds' referral: 404 on each URL, the same page as for
    an id that does not exist, and nothing of the person in it."""
    sam = world.browsers["sam"]
    for method, path in referral_urls(world.bordeaux):
        status, text = await status_of(sam, method, path)
        assert status == 404, (method, path)
        assert "Bernadette" not in text and "Page introuvable" in text
        unknown_status, unknown_text = await status_of(
            sam, method, path.replace(world.bordeaux, UNKNOWN)
        )
        assert unknown_status == 404 and unknown_text == text
    listing = await sam.get("/boite")
    assert "Bernadette" not in listing.text and "Louis" not in listing.text


async def test_an_antenna_member_sees_their_departments_and_gets_404_for_another_antenna(
    world: World,
) -> None:
    """Anne (Gironde) sees the Bordeaux case and not the Lyon one, on the list and by URL."""
    anne = world.browsers["anne"]
    listing = await anne.get("/boite")
    assert "Bernadette" in listing.text and "Louis" not in listing.text
    assert (await anne.get(f"/boite/{world.bordeaux}")).status_code == 200
    for method, path in referral_urls(world.lyon):
        assert (await status_of(anne, method, path))[0] == 404, (method, path)
    marc = world.browsers["marc"]  # the whole association
    listing = await marc.get("/boite")
    assert "Bernadette" in listing.text and "Louis" in listing.text


async def test_the_association_filter_narrows_a_coordinators_inbox_and_never_widens_a_members(
    world: World,
) -> None:
    """`?association=` is the coordinators' filter: Cora sees all inboxes, or one; an unknown id
    filters nothing. Sam (Second Souffle) naming 60 000 rebonds still sees only his own."""
    await offer(world.console.store, "second-souffle", "75", first_name="Yvette")
    cora, sam = world.browsers["cora"], world.browsers["sam"]

    def names(page: str) -> set[str]:
        return {n for n in ("Bernadette", "Louis", "Yvette") if n in page}

    assert names((await cora.get("/boite")).text) == {"Bernadette", "Louis", "Yvette"}
    assert names((await cora.get("/boite?association=second-souffle")).text) == {"Yvette"}
    assert names((await cora.get("/boite?association=60000-rebonds")).text) == {
        "Bernadette", "Louis",
    }  # fmt: skip
    assert names((await cora.get("/boite?association=nobody")).text) == {
        "Bernadette", "Louis", "Yvette",
    }  # fmt: skip
    assert names((await sam.get("/boite?association=60000-rebonds")).text) == {"Yvette"}


@pytest.mark.parametrize("who", ["anne", "marc", "sam", "dana", "olga", "otto"])
async def test_only_coordinators_reach_the_human_queue(world: World, who: str) -> None:
    """Every queue URL answers 403 to members and organisers."""
    browser = world.browsers[who]
    assert (await browser.get("/file")).status_code == 403
    for method, path in case_urls(world.case):
        assert (await status_of(browser, method, path))[0] == 403, (who, method, path)


@pytest.mark.parametrize("who", ["anne", "marc", "sam", "dana", "olga", "otto"])
async def test_coordination_pages_are_refused_to_associations(world: World, who: str) -> None:
    """Directory, preview and statistics (pages, exports, override and preview forms): 403."""
    browser = world.browsers[who]
    for path in (
        "/annuaire",
        "/apercu",
        "/statistiques",
        "/statistiques.csv",
        "/statistiques/rapport.png",
    ):
        assert (await browser.get(path)).status_code == 403, (who, path)
    for path in ("/annuaire/apesa", "/apercu"):
        assert (await browser.post(path, {"paused": "pause"})).status_code == 403, (who, path)


@pytest.mark.parametrize("who", ["anne", "marc", "sam", "dana"])
async def test_members_do_not_reach_conferences(world: World, who: str) -> None:
    """Conference pages are the organisers' (and coordinators')."""
    for method, path in conference_urls("second-souffle", world.conference):
        assert (await status_of(world.browsers[who], method, path))[0] == 403, (who, method, path)


async def test_an_organiser_gets_404_on_every_url_of_another_associations_conferences(
    world: World,
) -> None:
    """Otto (60 000 rebonds) on Second Souffle's conference: 404 everywhere; Olga reaches it."""
    otto, olga = world.browsers["otto"], world.browsers["olga"]
    for method, path in conference_urls("second-souffle", world.conference):
        assert (await status_of(otto, method, path))[0] == 404, (method, path)
    for method, path in conference_urls("60000-rebonds", world.conference)[3:]:
        assert (await status_of(otto, method, path))[0] == 404, (method, path)  # not theirs either
    assert (
        await olga.get(f"/conferences/second-souffle/{world.conference}/inscriptions")
    ).status_code == 200
    assert (await olga.get("/boite")).status_code == 403


async def test_accounts_are_managed_by_coordinators_and_by_an_associations_admin_for_it(
    world: World,
) -> None:
    """Members get 403; Dana (admin, Second Souffle) sees her association's accounts only and
    gets 404 deactivating anyone else; she cannot invite a coordinator."""
    assert (await world.browsers["sam"].get("/utilisateurs")).status_code == 403
    dana = world.browsers["dana"]
    page = await dana.get("/utilisateurs")
    assert (
        page.status_code == 200
        and "sam@souffle.test" in page.text
        and "anne@60000.test" not in page.text
    )
    marc = await world.console.store.user_by_email("marc@60000.test")
    assert marc is not None
    assert (await dana.post(f"/utilisateurs/{marc.id}/desactiver")).status_code == 404
    assert (await dana.post(f"/utilisateurs/{marc.id}/renvoyer")).status_code == 404
    refused = await dana.post(
        "/utilisateurs/inviter", {"email": "x@y.test", "name": "X", "role": "coordinator"}
    )
    assert (
        refused.status_code == 422
        and "que des membres ou organisateurs de votre association" in refused.text
    )
    invited = await dana.post("/utilisateurs/inviter", {"email": "new@souffle.test", "name": "New", "role": "member",
                                                        "association": "60000-rebonds"})  # fmt: skip
    assert invited.status_code == 422  # another association: refused
    ok = await dana.post(
        "/utilisateurs/inviter", {"email": "new@souffle.test", "name": "New", "role": "member"}
    )
    assert ok.status_code == 303
    created = await world.console.store.user_by_email("new@souffle.test")
    assert created is not None and created.association_id == "second-souffle" and not created.admin


async def test_the_audit_log_shows_coordinators_everything_and_members_their_association(
    world: World,
) -> None:
    """An action of 60 000 rebonds is in its members' log and the coordinators', not in Second
    Souffle's."""
    marc = world.browsers["marc"]
    await marc.post(f"/boite/{world.bordeaux}/reponse", {"answer": "accept"})
    marc_log = (await marc.get("/journal")).text
    sam_log = (await world.browsers["sam"].get("/journal")).text
    cora_log = (await world.browsers["cora"].get("/journal")).text
    assert "Orientation acceptée" in marc_log and "Orientation acceptée" in cora_log
    assert "Orientation acceptée" not in sam_log


async def test_without_a_session_every_page_sends_to_sign_in(world: World) -> None:
    """Not signed in: a redirection to the sign-in page that comes back after it."""
    client = world.console.client()
    paths = ["/", "/file", "/boite", f"/boite/{world.bordeaux}", "/annuaire", "/apercu", "/statistiques",
             "/conferences/second-souffle", "/utilisateurs", "/journal"]  # fmt: skip
    for path in paths:
        response = await client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith(
            "/connexion?suite="
        ), path
    assert (
        await client.post(f"/boite/{world.bordeaux}/reponse", data={"answer": "accept"})
    ).status_code == 303
