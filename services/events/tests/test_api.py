"""HTTP API on a real SQLite database: organisers' CRUD and auth, listing, registrations."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from icalendar import Calendar
from structlog.testing import capture_logs

from rebond_contracts.topics import CONFERENCES, REGISTRATIONS
from rebond_events.domain import PARIS
from rebond_testing.serving import store_loss_seen

from .conftest import Running, in_days

Body = Callable[..., dict[str, Any]]


async def create(
    service: Running, body: dict[str, Any], org: str = "second-souffle"
) -> dict[str, Any]:
    response = await service.client.post("/v1/events", json=body, headers=service.headers[org])
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def update(
    service: Running, event: dict[str, Any], changes: dict[str, Any], org: str = "second-souffle"
) -> Any:
    """PATCH `changes` onto `event` as organiser `org`: the response, whatever its status."""
    return await service.client.patch(
        f"/v1/events/{event['id']}", json=changes, headers=service.headers[org]
    )


async def cancel(service: Running, event: dict[str, Any], org: str = "second-souffle") -> Any:
    """Cancel `event` as organiser `org`: the response, whatever its status."""
    return await service.client.post(
        f"/v1/events/{event['id']}/cancel", headers=service.headers[org]
    )


async def register(service: Running, event_id: str, email: str, name: str = "Claire") -> Any:
    """Register through the API; returns once what it announced is published."""
    response = await service.client.post(
        f"/v1/events/{event_id}/registrations",
        json={"name": name, "email": email, "consent": True},
    )
    await service.settled()
    return response


def mails_to(service: Running, email: str) -> list[dict[str, Any]]:
    """The registration events (each one e-mail from the notifier) about `email`."""
    return [p for p in service.sink.payloads(REGISTRATIONS.name) if p["email"] == email]


def token_of(registration_event: dict[str, Any]) -> str:
    return parse_qs(urlparse(registration_event["cancel_url"]).query)["token"][0]


def fields(response: Any) -> set[str]:
    return {item["field"] for item in response.json()["detail"]}


async def test_organiser_schedules_an_event_in_paris_time(
    service: Running, event_body: Body
) -> None:
    """A created event keeps its Paris times, belongs to its organiser and is announced."""
    event = await create(service, event_body())
    assert event["organiser"] == "second-souffle"
    assert event["seats_left"] == 2 and event["status"] == "scheduled" and event["version"] == 1
    starts = datetime.fromisoformat(event["starts_at"])
    assert (starts.hour, starts.minute) == (18, 30)
    assert starts.utcoffset() == in_days(30).replace(tzinfo=PARIS).utcoffset()
    [announced] = service.sink.payloads(CONFERENCES.name)
    assert announced["event_id"] == event["id"] and announced["change"] == "scheduled"
    assert announced["starts_at"] == event["starts_at"]
    fetched = (await service.client.get(f"/v1/events/{event['id']}")).json()
    assert fetched == event


@pytest.mark.parametrize("key", [None, "not-a-key"])
async def test_organiser_routes_need_a_known_api_key(
    service: Running, event_body: Body, key: str | None
) -> None:
    """Creating, changing, cancelling or listing registrations without a known key is 401."""
    headers = {"X-API-Key": key} if key else {}
    event = await create(service, event_body())
    calls = [
        service.client.post("/v1/events", json=event_body(), headers=headers),
        service.client.patch(f"/v1/events/{event['id']}", json={"city": "Pau"}, headers=headers),
        service.client.post(f"/v1/events/{event['id']}/cancel", headers=headers),
        service.client.get(f"/v1/events/{event['id']}/registrations", headers=headers),
    ]
    for call in calls:
        assert (await call).status_code == 401


async def test_another_organisers_event_is_forbidden(service: Running, event_body: Body) -> None:
    """An organiser cannot change, cancel or see the registrations of another's event (403)."""
    event = await create(service, event_body(), org="second-souffle")
    other = "60000-rebonds"
    url = f"/v1/events/{event['id']}"
    assert (await update(service, event, {"city": "Pau"}, org=other)).status_code == 403
    assert (await cancel(service, event, org=other)).status_code == 403
    registrations = await service.client.get(f"{url}/registrations", headers=service.headers[other])
    assert registrations.status_code == 403
    assert (await service.client.get(url)).json()["city"] == "Bordeaux"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "party"}, "kind"),
        ({"ends_at": in_days(30, 17).isoformat()}, "ends_at"),
        ({"department": "75"}, "department"),
        ({"department": "20"}, "department"),
        ({"region": "99"}, "region"),
        ({"capacity": 0}, "capacity"),
        ({"title": "  "}, "title"),
        ({"title": ...}, "title"),
        ({"online_url": "not a url"}, "online_url"),
        ({"starts_at": "tomorrow"}, "starts_at"),
        ({"organiser": "someone-else"}, "organiser"),
    ],
)
async def test_bad_event_input_is_422_naming_the_field(
    service: Running, event_body: Body, changes: dict[str, Any], field: str
) -> None:
    """Each faulty field of a new event is named in the 422 answer."""
    response = await service.client.post(
        "/v1/events", json=event_body(**changes), headers=service.headers["second-souffle"]
    )
    assert response.status_code == 422
    assert field in fields(response)


async def test_an_update_that_breaks_a_rule_is_422_naming_the_field(
    service: Running, event_body: Body
) -> None:
    """A partial update is checked against the whole event: an end before the start is refused."""
    event = await create(service, event_body())
    response = await update(service, event, {"ends_at": in_days(29).isoformat()})
    assert response.status_code == 422 and fields(response) == {"ends_at"}
    response = await update(service, event, {"region": "11"})
    assert response.status_code == 422 and fields(response) == {"department"}


async def test_an_update_is_announced_to_the_event_and_its_registrants(
    service: Running, event_body: Body
) -> None:
    """Changing the venue bumps the version and tells each registrant of the change."""
    event = await create(service, event_body())
    await register(service, event["id"], "claire@example.org")
    response = await update(
        service, event, {"city": "Mérignac", "venue_address": "1 avenue de l'Yser"}
    )
    assert response.status_code == 200
    assert response.json()["city"] == "Mérignac" and response.json()["version"] == 2
    assert [p["change"] for p in service.sink.payloads(CONFERENCES.name)] == [
        "scheduled",
        "updated",
    ]
    told = service.sink.payloads(REGISTRATIONS.name)[-1]
    assert told["change"] == "event_updated" and told["conference"]["city"] == "Mérignac"


async def test_a_larger_room_promotes_the_waitlist(service: Running, event_body: Body) -> None:
    """Raising the capacity confirms waitlisted people in their order of arrival."""
    event = await create(service, event_body(capacity=1))
    for n in range(3):
        await register(service, event["id"], f"p{n}@example.org")
    response = await update(service, event, {"capacity": 2})
    assert response.json()["confirmed"] == 2 and response.json()["waitlisted"] == 1
    promoted = [p for p in service.sink.payloads(REGISTRATIONS.name) if p["change"] == "promoted"]
    assert [p["email"] for p in promoted] == ["p1@example.org"]


async def test_cancelling_an_event_cancels_its_registrations(
    service: Running, event_body: Body
) -> None:
    """A cancelled event leaves the listing, refuses registrations and tells each registrant."""
    event = await create(service, event_body())
    await register(service, event["id"], "claire@example.org")
    response = await cancel(service, event)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert service.sink.payloads(CONFERENCES.name)[-1]["change"] == "cancelled"
    told = service.sink.payloads(REGISTRATIONS.name)[-1]
    assert (told["change"], told["cancelled_by"]) == ("cancelled", "organiser")
    assert (await service.client.get("/v1/events")).json()["total"] == 0
    assert (await register(service, event["id"], "late@example.org")).status_code == 409


async def test_listing_filters_and_pages(service: Running, event_body: Body) -> None:
    """Public listing filters by region, department, kind and start date, soonest first, by pages."""
    bordeaux_soon = await create(
        service, event_body(starts_at=in_days(10).isoformat(), ends_at=in_days(10, 20).isoformat())
    )
    await create(service, event_body(kind="peer_exchange"))
    await create(
        service,
        event_body(
            department="64",
            city="Pau",
            starts_at=in_days(40).isoformat(),
            ends_at=in_days(40, 20).isoformat(),
        ),
    )
    await create(service, event_body(region="11", department="75", city="Paris"))
    past = in_days(-3)
    await create(
        service, event_body(starts_at=past.isoformat(), ends_at=in_days(-3, 20).isoformat())
    )

    async def ids(**params: Any) -> list[str]:
        response = await service.client.get("/v1/events", params=params)
        assert response.status_code == 200
        return [item["city"] + ":" + item["kind"] for item in response.json()["items"]]

    assert len(await ids()) == 4  # the past one is not upcoming
    assert await ids(region="11") == ["Paris:success_stories"]
    assert await ids(department="64") == ["Pau:success_stories"]
    assert await ids(kind="peer_exchange") == ["Bordeaux:peer_exchange"]
    assert len(await ids(**{"from": past.date().isoformat()})) == 5
    assert len(await ids(**{"from": in_days(35).date().isoformat()})) == 1
    first = (await service.client.get("/v1/events", params={"per_page": 2})).json()
    second = (await service.client.get("/v1/events", params={"per_page": 2, "page": 2})).json()
    assert first["total"] == second["total"] == 4
    assert first["items"][0]["id"] == bordeaux_soon["id"]
    assert {e["id"] for e in first["items"]}.isdisjoint({e["id"] for e in second["items"]})
    assert len(second["items"]) == 2
    bad = await service.client.get("/v1/events", params={"from": "soon", "per_page": 0})
    assert bad.status_code == 422 and fields(bad) == {"from", "per_page"}


async def test_seats_then_waitlist(service: Running, event_body: Body) -> None:
    """With two seats, the third person is waitlisted in position 1; counts follow."""
    event = await create(service, event_body(capacity=2))
    answers = [await register(service, event["id"], f"p{n}@example.org") for n in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert mails_to(service, "p2@example.org")[0]["waitlist_position"] == 1
    detail = (await service.client.get(f"/v1/events/{event['id']}")).json()
    assert (detail["seats_left"], detail["confirmed"], detail["waitlisted"]) == (0, 2, 1)
    changes = [p["change"] for p in service.sink.payloads(REGISTRATIONS.name)]
    assert changes == ["confirmed", "confirmed", "waitlisted"]


async def test_the_reply_is_the_same_whether_the_email_was_registered_or_not(
    service: Running, event_body: Body
) -> None:
    """A stranger typing someone's address learns nothing from the reply: same status, same
    body, no cancellation link, no registration id, whether the address was new or not."""
    event = await create(service, event_body())
    first = await register(service, event["id"], "claire@example.org")
    again = await register(service, event["id"], "claire@example.org", name="Mallory")
    fresh = await register(service, event["id"], "zoe@example.org")
    assert first.status_code == again.status_code == fresh.status_code == 202
    assert first.json() == again.json() == fresh.json()
    assert set(first.json()) == {"event_id", "status", "message"}
    assert "token=" not in first.text and "/inscriptions/" not in first.text
    assert (await service.client.get(f"/v1/events/{event['id']}")).json()["confirmed"] == 2


async def test_a_repeat_registration_mails_the_link_again_to_the_registered_address(
    service: Running, event_body: Body
) -> None:
    """Registering again (a variant of the address included) e-mails the link once more, to the
    address first registered and under the first name, at most every ten minutes."""
    event = await create(service, event_body())
    await register(service, event["id"], "Claire.Martin@Example.org")
    await register(service, event["id"], "claire.martin+x@example.org", name="Mallory")
    assert len(service.sink.payloads(REGISTRATIONS.name)) == 1  # the link just went out
    service.clock.advance(timedelta(minutes=11))
    await register(service, event["id"], "CLAIRE.MARTIN+conf@example.org", name="Mallory")
    sent = service.sink.payloads(REGISTRATIONS.name)
    assert [(p["email"], p["name"], p["change"]) for p in sent] == [
        ("Claire.Martin@example.org", "Claire", "confirmed"),  # as typed (domains are case-blind)
        ("Claire.Martin@example.org", "Claire", "confirmed"),
    ]
    assert sent[0]["registration_id"] == sent[1]["registration_id"]
    assert sent[1]["cancel_url"].startswith("http://events.test/inscriptions/")
    assert len({e.headers["ce_id"] for e in service.sink.sent}) == len(
        service.sink.sent
    )  # one mail each
    assert (await service.client.get(f"/v1/events/{event['id']}")).json()["confirmed"] == 1


@pytest.mark.parametrize(
    ("first", "variant"),
    [
        ("claire@example.org", "  Claire@Example.ORG "),
        ("claire@example.org", "claire+conf1@example.org"),
        ("claire.martin@gmail.com", "c.l.a.i.r.e.m.a.r.t.i.n+2@googlemail.com"),
    ],
)
async def test_variants_of_one_mailbox_hold_one_seat(
    service: Running, event_body: Body, first: str, variant: str
) -> None:
    """Case, a `+tag` and Gmail's dots do not make another person: one seat, not a flood."""
    event = await create(service, event_body(capacity=5))
    await register(service, event["id"], first)
    await register(service, event["id"], variant)
    detail = (await service.client.get(f"/v1/events/{event['id']}")).json()
    assert (detail["confirmed"], detail["waitlisted"]) == (1, 0)
    listing = (
        await service.client.get(
            f"/v1/events/{event['id']}/registrations", headers=service.headers["second-souffle"]
        )
    ).json()
    assert [r["email"] for r in listing] == [first]  # kept as typed, for sending


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Claire", "email": "claire@example.org", "consent": False}, "consent"),
        ({"name": "Claire", "email": "not-an-email", "consent": True}, "email"),
        ({"name": "", "email": "claire@example.org", "consent": True}, "name"),
        ({"email": "claire@example.org", "consent": True}, "name"),
        ({"name": "Gagnez 1000 €", "email": "a@example.org", "consent": True}, "name"),
        ({"name": "Voir https://x.example", "email": "a@example.org", "consent": True}, "name"),
        ({"name": "Voir exemple.fr", "email": "a@example.org", "consent": True}, "name"),
        ({"name": "a@example.org", "email": "a@example.org", "consent": True}, "name"),
        ({"name": "Claire\nBcc: x", "email": "a@example.org", "consent": True}, "name"),
        ({"name": "Claire\u202egnp.exe", "email": "a@example.org", "consent": True}, "name"),
        ({"name": "C" * 81, "email": "a@example.org", "consent": True}, "name"),
    ],
)
async def test_bad_registration_is_422_naming_the_field(
    service: Running, event_body: Body, body: dict[str, Any], field: str
) -> None:
    """A registration without consent, a valid e-mail or a name (letters, spaces, apostrophes,
    hyphens and initials' dots: no link, address or digits to mail a stranger) is refused,
    naming the field."""
    event = await create(service, event_body())
    response = await service.client.post(f"/v1/events/{event['id']}/registrations", json=body)
    assert response.status_code == 422 and fields(response) == {field}


async def test_cancelling_through_the_signed_link_promotes_the_first_waitlisted(
    service: Running, event_body: Body
) -> None:
    """The signed link frees the seat, the first waitlisted person gets it, once only."""
    event = await create(service, event_body(capacity=1))
    for name in ("alice", "bob", "chloe"):
        await register(service, event["id"], f"{name}@example.org", name)
    [alice], [bob], [chloe] = (
        mails_to(service, f"{n}@example.org") for n in ("alice", "bob", "chloe")
    )
    assert (bob["waitlist_position"], chloe["waitlist_position"]) == (1, 2)
    token = token_of(alice)
    url = f"/v1/registrations/{alice['registration_id']}/cancel"
    assert (await service.client.post(url, json={"token": token + "x"})).status_code == 403
    assert (await service.client.post(url, params={"token": token})).status_code == 422
    other = f"/v1/registrations/{bob['registration_id']}/cancel"
    assert (await service.client.post(other, json={"token": token})).status_code == 403
    result = await service.client.post(url, json={"token": token})
    assert result.status_code == 200 and result.json()["promoted"] == 1
    published = len(service.sink.sent)
    again = await service.client.post(url, json={"token": token})
    assert again.json() == {**result.json(), "promoted": 0} and len(service.sink.sent) == published
    listing = (
        await service.client.get(
            f"/v1/events/{event['id']}/registrations", headers=service.headers["second-souffle"]
        )
    ).json()
    assert [(r["name"], r["status"], r["waitlist_position"]) for r in listing] == [
        ("alice", "cancelled", None),
        ("bob", "confirmed", None),
        ("chloe", "waitlisted", 1),
    ]
    tail = service.sink.payloads(REGISTRATIONS.name)[-2:]
    assert [(p["email"], p["change"], p["cancelled_by"]) for p in tail] == [
        ("alice@example.org", "cancelled", "person"),
        ("bob@example.org", "promoted", None),
    ]
    assert tail[1]["registration_id"] == bob["registration_id"]
    assert (await service.client.post(other, json={"token": token_of(tail[1])})).status_code == 200


async def test_ics_file_of_an_event(service: Running, event_body: Body) -> None:
    """The .ics holds one VEVENT in Europe/Paris with its VTIMEZONE; a cancelled one says so."""
    event = await create(service, event_body(online_url="https://visio.example.org/rebond"))
    response = await service.client.get(f"/v1/events/{event['id']}/calendar.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    [vevent] = calendar.walk("VEVENT")
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]
    assert vevent["UID"] == f"{event['id']}@conferences.rebond"
    assert str(vevent["SUMMARY"]) == "Rebondir après une liquidation"
    start = vevent.decoded("DTSTART")
    assert (start.hour, start.minute, str(start.tzinfo)) == (18, 30, "Europe/Paris")
    assert vevent.decoded("DTEND").hour == 20
    assert "12 place de la Bourse, Bordeaux" in str(vevent["LOCATION"])
    assert "https://visio.example.org/rebond" in str(vevent["DESCRIPTION"])
    assert str(vevent["STATUS"]) == "CONFIRMED"
    assert b"\r\n" in response.content  # RFC 5545 line endings
    await cancel(service, event)
    cancelled = Calendar.from_ical(
        (await service.client.get(f"/v1/events/{event['id']}/calendar.ics")).content
    )
    [vevent] = cancelled.walk("VEVENT")
    assert str(vevent["STATUS"]) == "CANCELLED" and int(vevent["SEQUENCE"]) == 1


async def test_events_wait_in_the_outbox_while_kafka_is_down(
    service: Running, event_body: Body
) -> None:
    """A change made while Kafka refuses is stored and published, in order, once it answers."""
    service.sink.down = True
    event = await create(service, event_body())
    await register(service, event["id"], "claire@example.org")
    assert service.sink.sent == []
    service.sink.down = False
    assert await service.events.publisher.flush() == 2
    assert [e.topic for e in service.sink.sent] == [CONFERENCES.name, REGISTRATIONS.name]
    assert await service.events.publisher.flush() == 0


async def test_readiness_names_the_store_once_it_no_longer_answers(service: Running) -> None:
    """/readyz is 200 while the store answers its `SELECT 1`, 503 naming the store once its
    database does not (here closed), /healthz staying alive; 200 again once the store is
    started anew (on a new `Database`: the check reads the store's, not the first one)."""
    await store_loss_seen(service.client, service.events.store.close, kafka="not used")
    await service.events.store.start()
    assert (await service.client.get("/readyz")).status_code == 200


async def test_personal_data_stays_out_of_announcements_and_logs(
    service: Running, event_body: Body
) -> None:
    """Only registration events carry the person's name and e-mail; logs never do."""
    with capture_logs() as logs:
        event = await create(service, event_body())
        await register(service, event["id"], "claire.secret@example.org", "Claire Secrète")
        await service.client.post("/evenements/" + event["id"] + "/inscription",
                                  data={"name": "Zoé Secrète", "email": "zoe.secret@example.org", "consent": "yes"})  # fmt: skip
        await service.settled()
    assert "secret" not in repr(logs).lower()
    for sent in service.sink.sent:
        if sent.topic != REGISTRATIONS.name:
            assert b"secret" not in sent.value.lower()
    [registration, _] = service.sink.payloads(REGISTRATIONS.name)
    assert registration["email"] == "claire.secret@example.org"
    assert registration["cancel_url"].startswith("http://events.test/inscriptions/")


async def test_the_registration_page_reads_plainly_and_points_to_the_stories(
    service: Running, event_body: Body
) -> None:
    """The thanks page's French is whole ("Rien reçu ?"), and it links to the success stories."""
    event = await create(service, event_body())
    page = await service.client.post(
        f"/evenements/{event['id']}/inscription",
        data={"name": "Zoé", "email": "zoe@example.org", "consent": "yes"},
    )
    assert "Rien reçu&nbsp;? Regardez" in page.text and "nbsp;?nbsp" not in page.text
    assert 'href="/temoignages"' in page.text
