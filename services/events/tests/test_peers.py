"""Peer volunteers and matching (issue 24): sign-up, confirmation, moderation, pause and
erasure by signed link; a person introduced to a volunteer, and the next one after a decline."""

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest

from rebond_contracts.moderation import VolunteerStatus
from rebond_contracts.payloads import PeerContactV1, PeerRequestV1
from rebond_contracts.topics import COMMUNITY_MAIL, PEER_MATCHES
from rebond_events.peers import (
    PeerRequest,
    Volunteer,
    choose_peer,
    stage_closeness,
)
from rebond_testing.mail import link_in
from rebond_testing.tokens import forged

from .conftest import Running

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REFERENCE = "RB-7K3M-Q9XA-2DFE-W8NB"


def volunteer(id: str, **changes: Any) -> Volunteer:
    values: dict[str, Any] = {
        "id": id, "status": VolunteerStatus.APPROVED, "pseudonym": id, "region": "75",
        "stage": "after_liquidation", "sector": "I", "contact_channel": "email",
        "contact": f"{id}@example.org", "email": f"{id}@example.org", "availability": "soir",
        "monthly_limit": 2, "locale": "fr", "created_at": T0, "updated_at": T0,
    }  # fmt: skip
    return Volunteer(**{**values, **changes})


REQUEST = PeerRequest(
    REFERENCE, "75", "after_liquidation", "I", "Claire", "claire@example.org", None, "fr", T0
)


@pytest.mark.parametrize(
    ("candidates", "tried", "introductions", "chosen"),
    [
        ([volunteer("a")], set(), {}, "a"),
        ([volunteer("a", region="11")], set(), {}, None),
        ([volunteer("a", status=VolunteerStatus.PAUSED)], set(), {}, None),
        ([volunteer("a", status=VolunteerStatus.PENDING)], set(), {}, None),
        ([volunteer("a")], {"a"}, {}, None),
        ([volunteer("a")], set(), {"a": 2}, None),
        ([volunteer("a", stage="safeguard"), volunteer("b", created_at=T0 + timedelta(1))],
         set(), {}, "b"),
        ([volunteer("a", sector="C"), volunteer("b", created_at=T0 + timedelta(1))],
         set(), {}, "b"),
        ([volunteer("a"), volunteer("b", created_at=T0 + timedelta(1))], set(), {"a": 1}, "b"),
        ([volunteer("a", stage="liquidation_in_progress"), volunteer("b", stage="safeguard")],
         set(), {}, "a"),
    ],
    ids=[
        "same region", "other region", "paused", "not approved", "already tried",
        "at monthly limit", "same stage first", "same sector next", "fewer introductions",
        "close stage over a far one",
    ],
)  # fmt: skip
def test_choose_peer(
    candidates: list[Volunteer], tried: set[str], introductions: dict[str, int], chosen: str | None
) -> None:
    """Same region, approved, untried, under the monthly limit; closest stage, sector, load."""
    found = choose_peer(REQUEST, candidates, tried, introductions)
    assert (found.id if found else None) == chosen


def test_stage_closeness() -> None:
    """The same stage, then one of the same group (before court, recovery, end), then others."""
    assert stage_closeness("safeguard", "safeguard") == 2
    assert stage_closeness("safeguard", "receivership") == 1
    assert stage_closeness("safeguard", "after_liquidation") == 0
    assert stage_closeness("unsure", "safeguard") == 0


def sign_up_body(name: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pseudonym": name, "region": "75", "stage": "after_liquidation", "sector": "I",
        "contact_channel": "phone", "contact": "06 12 34 56 78",
        "email": f"{name.lower()}@example.org", "availability": "le soir en semaine",
        "monthly_limit": 1, "consent": True,
    }  # fmt: skip
    return {**body, **changes}


def link(text: str, path: str) -> tuple[str, str]:
    """(the URL's path, its token) of the first signed link whose path ends with `path`."""
    url = link_in(text, rf"(http\S+{path}\?token=\S+)")
    return url.path, parse_qs(url.query)["token"][0]


def mails(service: Running, to: str | None = None) -> list[dict[str, Any]]:
    return [m for m in service.sink.payloads(COMMUNITY_MAIL.name) if to in (None, m["to"])]


async def approved_volunteer(service: Running, name: str, **changes: Any) -> str:
    """Sign up, confirm by the e-mailed link, approve: the volunteer's id."""
    signed = await service.client.post("/v1/peers/volunteers", json=sign_up_body(name, **changes))
    assert signed.status_code == 202, signed.text
    await service.settled()
    path, token = link(mails(service, f"{name.lower()}@example.org")[-1]["text"], "/confirmer")
    volunteer_id = path.split("/")[2]
    confirmed = await service.client.post(
        f"/v1/peers/volunteers/{volunteer_id}/confirm", json={"token": token}
    )
    assert confirmed.json() == {"status": "pending"}
    approved = await service.client.post(
        f"/v1/peers/volunteers/{volunteer_id}/approve", headers=service.headers["second-souffle"]
    )
    assert approved.json() == {"status": "approved"}
    return volunteer_id


def peer_request(reference: str = REFERENCE) -> PeerRequestV1:
    return PeerRequestV1(
        reference=reference, region="75", stage="after_liquidation", sector="I",  # type: ignore[arg-type]
        contact=PeerContactV1(first_name="Claire", email="claire@example.org"),
        requested_at=datetime.now(UTC),
    )  # fmt: skip


async def test_a_volunteer_is_matched_only_once_confirmed_and_approved(service: Running) -> None:
    """Unconfirmed or pending volunteers are not proposed; approval is a moderator's, with a key,
    and the moderator sees neither contact nor address."""
    signed = await service.client.post("/v1/peers/volunteers", json=sign_up_body("Paul"))
    assert signed.status_code == 202
    await service.settled()
    assert await service.events.community.request_peer(peer_request()) is None
    path, token = link(mails(service, "paul@example.org")[0]["text"], "/confirmer")
    volunteer_id = path.split("/")[2]
    refused = await service.client.post(
        f"/v1/peers/volunteers/{volunteer_id}/confirm", json={"token": forged(token)}
    )
    assert refused.status_code == 403
    page = await service.client.post(path, data={"token": token})
    assert "Adresse confirmée" in page.text
    assert (
        await service.client.post(f"/v1/peers/volunteers/{volunteer_id}/approve")
    ).status_code == 401
    pending = await service.client.get(
        "/v1/moderation/volunteers", headers=service.headers["second-souffle"]
    )
    [shown] = pending.json()
    assert shown["pseudonym"] == "Paul" and "contact" not in shown and "email" not in shown


async def test_a_person_is_introduced_and_a_decline_proposes_the_next_peer(
    service: Running,
) -> None:
    """Both sides get an introduction with only what each shared, under the person's
    reference; a decline by the person proposes the next volunteer; none left: `unmatched`;
    the monthly limit holds."""
    await approved_volunteer(service, "Paul")
    await approved_volunteer(service, "Lina", stage="receivership")
    match_id = await service.events.community.request_peer(peer_request())
    assert match_id is not None

    [to_person] = mails(service, "claire@example.org")
    [to_paul] = [m for m in mails(service, "paul@example.org") if m["kind"] == "peer_introduction"]
    assert "06 12 34 56 78" in to_person["text"] and "paul@example.org" not in to_person["text"]
    assert "claire@example.org" in to_paul["text"] and "Claire" in to_paul["subject"]
    assert "Lina" not in to_person["text"]
    # Filed under the person's reference, so their erasure cancels them at the notifier too.
    assert (to_person["reference"], to_paul["reference"]) == (REFERENCE, REFERENCE)

    path, token = link(to_person["text"], "/person")
    assert (await service.client.get(f"{path}?token={token}")).status_code == 200
    done = await service.client.post(path, data={"token": token})
    assert done.status_code == 200 and "présentons par e-mail" in done.text
    introductions = [
        m for m in mails(service, "claire@example.org") if m["kind"] == "peer_introduction"
    ]
    assert [("Lina" in m["text"]) for m in introductions] == [False, True]

    [*_, to_lina] = mails(service, "lina@example.org")
    _, volunteer_token = link(to_lina["text"], "/volunteer")
    lina_match = [p for p in service.sink.payloads(PEER_MATCHES.name) if p["status"] == "proposed"][
        -1
    ]
    declined = await service.client.post(
        f"/v1/peers/matches/{lina_match['match_id']}/decline",
        json={"token": volunteer_token, "side": "volunteer"},
    )
    assert declined.json() == {"status": "declined", "next_match_id": None}
    steps = [(p["status"], p["attempt"]) for p in service.sink.payloads(PEER_MATCHES.name)]
    assert steps == [
        ("proposed", 1),
        ("declined", 1),
        ("proposed", 2),
        ("declined", 2),
        ("unmatched", 2),
    ]
    assert all("claire" not in str(p) for p in service.sink.payloads(PEER_MATCHES.name))
    assert mails(service, "claire@example.org")[-1]["kind"] == "peer_none"

    # Paul's monthly limit (1) is used by Claire's (declined by her: it no longer counts).
    other = await service.events.community.request_peer(peer_request("RB-7K3M-Q9XA-2DFE-W8NC"))
    assert other is not None
    third = await service.events.community.request_peer(peer_request("RB-7K3M-Q9XA-2DFE-W8ND"))
    assert third is not None  # Lina: her decline freed her month too
    fourth = await service.events.community.request_peer(peer_request("RB-7K3M-Q9XA-2DFE-W8NE"))
    assert fourth is None


async def test_a_request_read_again_proposes_nothing_new(service: Running) -> None:
    """A redelivered request neither proposes another peer nor e-mails anyone again."""
    await approved_volunteer(service, "Paul")
    assert await service.events.community.request_peer(peer_request()) is not None
    sent = len(service.sink.sent)
    assert await service.events.community.request_peer(peer_request()) is None
    assert len(service.sink.sent) == sent


async def test_a_volunteer_pauses_resumes_and_erases_with_their_link(service: Running) -> None:
    """Paused: not proposed; resumed: proposed again; erased: gone, and a second erase 404s."""
    volunteer_id = await approved_volunteer(service, "Paul")
    path, token = link(mails(service, "paul@example.org")[-1]["text"], "/gerer")
    page = await service.client.get(f"{path}?token={token}")
    assert "Faire une pause" in page.text
    await service.client.post(path, data={"token": token, "action": "pause"})
    assert await service.events.community.request_peer(peer_request()) is None
    resumed = await service.client.post(
        f"/v1/peers/volunteers/{volunteer_id}/link/resume", json={"token": token}
    )
    assert resumed.json() == {"status": "approved"}
    assert await service.events.community.request_peer(peer_request("RB-7K3M-Q9XA-2DFE-W8NC"))
    erased = await service.client.post(path, data={"token": token, "action": "erase"})
    assert "effacées" in erased.text
    again = await service.client.post(
        f"/v1/peers/volunteers/{volunteer_id}/link/erase", json={"token": token}
    )
    assert again.status_code == 404


async def test_a_report_holds_the_peer_until_a_moderator_decides(service: Running) -> None:
    """Either side's signed link reports a problem: the volunteer is introduced to nobody and
    cannot resume themself; moderators see who reported; a person who reported is proposed the
    next peer, a person reported by the volunteer nobody; a moderator re-approves or removes."""
    paul = await approved_volunteer(service, "Paul")
    await approved_volunteer(service, "Lina", stage="receivership")
    first = await service.events.community.request_peer(peer_request())
    [to_person] = mails(service, "claire@example.org")
    path, token = link(to_person["text"], "/person/signaler")
    assert "Signalez-le" in to_person["text"]
    refused = await service.client.post(path, data={"token": forged(token)})
    assert refused.status_code == 403
    form = await service.client.get(f"{path}?token={token}")
    assert form.status_code == 200 and "ce pair n&#39;est présenté à personne" in form.text
    done = await service.client.post(path, data={"token": token})
    assert done.status_code == 200 and "Signalement reçu" in done.text
    again = await service.client.post(
        f"/v1/peers/matches/{first}/report", json={"token": token, "side": "person"}
    )
    assert again.json() == {"status": "reported", "next_match_id": None}
    to_lina = [m for m in mails(service, "claire@example.org") if "Lina" in m["text"]]
    assert len(to_lina) == 1  # the person who reported: the next peer
    steps = [p["status"] for p in service.sink.payloads(PEER_MATCHES.name)]
    assert steps == ["proposed", "declined", "proposed"]

    moderators = service.headers["second-souffle"]
    held = await service.client.get("/v1/moderation/volunteers?status=reported", headers=moderators)
    assert [(v["pseudonym"], v["reported_by"]) for v in held.json()] == [("Paul", "person")]
    _, manage_token = link(mails(service, "paul@example.org")[-2]["text"], "/gerer")
    resumed = await service.client.post(
        f"/v1/peers/volunteers/{paul}/link/resume", json={"token": manage_token}
    )
    assert resumed.status_code == 409
    other = await service.events.community.request_peer(peer_request("RB-7K3M-Q9XA-2DFE-W8NC"))
    assert other is None  # Paul held, Lina at her monthly limit

    # Lina reports Claire: the match ends, nobody else is proposed to Claire.
    [*_, lina_intro] = mails(service, "lina@example.org")
    lina_path, lina_token = link(lina_intro["text"], "/volunteer/signaler")
    lina_form = await service.client.get(f"{lina_path}?token={lina_token}")
    assert "nous ne vous présentons personne" in lina_form.text
    await service.client.post(lina_path, data={"token": lina_token})
    assert len([m for m in mails(service) if m["reference"] == REFERENCE]) == 4  # 2 matches
    held = await service.client.get("/v1/moderation/volunteers?status=reported", headers=moderators)
    assert {(v["pseudonym"], v["reported_by"]) for v in held.json()} == {
        ("Paul", "person"), ("Lina", "volunteer"),
    }  # fmt: skip

    approved = await service.client.post(f"/v1/peers/volunteers/{paul}/approve", headers=moderators)
    assert approved.json() == {"status": "approved"}
    assert "de nouveau" in mails(service, "paul@example.org")[-1]["subject"]
    lina = next(v["id"] for v in held.json() if v["pseudonym"] == "Lina")
    removed = await service.client.post(f"/v1/peers/volunteers/{lina}/reject", headers=moderators)
    assert removed.json() == {"status": None}
    assert "met fin" in mails(service, "lina@example.org")[-1]["text"]
    assert await service.events.community.request_peer(peer_request("RB-7K3M-Q9XA-2DFE-W8ND"))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"consent": False}, "consent"),
        ({"contact": "paul@example.org"}, "contact"),
        ({"contact_channel": "email", "contact": "06 12 34 56 78"}, "contact"),
        ({"monthly_limit": 0}, "monthly_limit"),
        ({"pseudonym": "paul@example.org"}, "pseudonym"),
        ({"availability": "soir\r\nBcc: x@example.org"}, "availability"),
    ],
)
async def test_bad_sign_up_names_its_field(
    service: Running, changes: dict[str, Any], field: str
) -> None:
    """The API answers 422 naming the field; the form the same sentence in French."""
    response = await service.client.post(
        "/v1/peers/volunteers", json=sign_up_body("Paul", **changes)
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]] == [field]
    form = {k: str(v) for k, v in sign_up_body("Paul", **changes).items() if k != "consent"}
    if changes.get("consent", True):
        form["consent"] = "yes"
    page = await service.client.post("/pairs/devenir-pair", data=form)
    assert page.status_code == 422 and f'href="#peer-{field}"' in page.text


async def test_an_erased_person_is_not_matched_and_their_matches_go(service: Running) -> None:
    """An erasure deletes the person's request and matches; their request read later matches
    no one."""
    await approved_volunteer(service, "Paul")
    assert await service.events.community.request_peer(peer_request()) is not None
    await service.events.conferences.erase(REFERENCE)
    counted = await service.events.store.database.run(
        lambda c: c.exec_driver_sql(
            "SELECT (SELECT count(*) FROM peer_requests) + (SELECT count(*) FROM peer_matches)"
        ).scalar_one()
    )
    assert counted == 0
    assert await service.events.community.request_peer(peer_request()) is None


async def test_peer_requests_and_unconfirmed_volunteers_go_after_the_retention(
    service: Running,
) -> None:
    """`anonymise` deletes the contact a person shared for a peer, and volunteers who never
    confirmed, once older than the retention; not before."""
    from functools import partial

    from rebond_events.privacy import anonymise

    await approved_volunteer(service, "Paul")
    await service.client.post("/v1/peers/volunteers", json=sign_up_body("Lina"))
    assert await service.events.community.request_peer(peer_request()) is not None
    retention = timedelta(days=30)

    async def anonymised_in(days: int) -> tuple[int, int]:
        now = datetime.now(UTC) + timedelta(days=days)
        done = await service.events.store.database.run(
            partial(anonymise, now=now, retention=retention)
        )
        return done.peer_requests, done.unconfirmed_volunteers

    assert await anonymised_in(29) == (0, 0)
    assert await anonymised_in(31) == (1, 1)
    left = await service.client.get(
        "/v1/moderation/volunteers?status=approved", headers=service.headers["second-souffle"]
    )
    assert [v["pseudonym"] for v in left.json()] == ["Paul"]


async def test_each_step_of_a_match_repeats_the_persons_statistics_consent(
    service: Running,
) -> None:
    """`peers.matches` says, on every step, whether the person consented to statistics (the
    console counts only those matches): as the request said, kept through a decline."""
    await approved_volunteer(service, "Paul")
    consenting = peer_request().model_copy(update={"statistics_consent": True})
    assert await service.events.community.request_peer(consenting) is not None
    other = peer_request("RB-7K3M-Q9XA-2DFE-W8NC")  # without consent
    assert await service.events.community.request_peer(other) is None  # Paul's month is used
    [to_person] = mails(service, "claire@example.org")[:1]
    path, token = link(to_person["text"], "/person")
    await service.client.post(path, data={"token": token})
    steps = [
        (p["reference"][-1], p["status"], p["statistics_consent"])
        for p in service.sink.payloads(PEER_MATCHES.name)
    ]
    assert steps == [
        ("B", "proposed", True),
        ("C", "unmatched", False),
        ("B", "declined", True),
        ("B", "unmatched", True),
    ]
