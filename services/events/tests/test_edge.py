"""The events service's public edge: what a stranger can send, what they get back, and the
cancellation links (signed, in a body, expiring with their conference)."""

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from rebond_contracts.topics import REGISTRATIONS
from rebond_events.settings import DEFAULT_SIGNING_SECRET
from rebond_kafka.testing import PRODUCTION_KAFKA

from .conftest import Running, running, settings_for
from .test_api import create, register

Body = Callable[..., dict[str, Any]]
PRODUCTION = {
    **PRODUCTION_KAFKA,
    "environment": "production",
    "signing_secret": "a-production-signing-secret-of-32-characters-or-more",
    "rate_limit_per_minute": 20,
}


@pytest.fixture
async def limited(sqlite_url: str) -> AsyncIterator[Running]:
    """The app with a tight limit: 2 requests with a body, then one a minute, and 2 KiB."""
    settings = settings_for(
        sqlite_url, rate_limit_per_minute=1, rate_limit_burst=2, max_body_bytes=2048
    )
    async for value in running(settings):
        yield value


@pytest.mark.parametrize("field", ["title", "venue_address", "city"])
@pytest.mark.parametrize("bad", ["Soirée\r\nBcc: tous@example.org", "Soirée\x00", "A\u2028B"])
async def test_control_characters_in_a_mail_header_field_get_422(
    service: Running, event_body: Body, field: str, bad: str
) -> None:
    """A line break (or any control character) in a field that reaches an e-mail is refused,
    naming the field, on creation and on update."""
    headers = service.headers["second-souffle"]
    created = await service.client.post(
        "/v1/events", json=event_body(**{field: bad}), headers=headers
    )
    assert created.status_code == 422
    assert [(e["field"], e["type"]) for e in created.json()["detail"]] == [
        (field, "control_characters")
    ]
    event = await create(service, event_body())
    patched = await service.client.patch(
        f"/v1/events/{event['id']}", json={field: bad}, headers=headers
    )
    assert patched.status_code == 422 and patched.json()["detail"][0]["field"] == field


@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [
        ("0001-01-01T00:00:00", "0001-01-01T02:00:00"),
        ("0001-01-01T00:00:00+23:59", "2027-01-01T02:00:00"),
        ("9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59-23:59"),
    ],
)
async def test_a_time_at_the_edge_of_the_calendar_gets_422(
    service: Running, event_body: Body, starts_at: str, ends_at: str
) -> None:
    """A time Paris time cannot express (year 1 or 9999 across time zones) is a 422 naming the
    field, not an overflow (a 500 found by the fuzz test)."""
    response = await service.client.post(
        "/v1/events",
        json=event_body(starts_at=starts_at, ends_at=ends_at),
        headers=service.headers["second-souffle"],
    )
    assert response.status_code == 422
    assert ("starts_at", "datetime_range") in {
        (e["field"], e["type"]) for e in response.json()["detail"]
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page": "9223372036854775809"}, "page"),
        ({"page": "10001"}, "page"),
        ({"page": "0"}, "page"),
        ({"from": "0001-01-01"}, "from"),
        ({"from": "0"}, "from"),
        ({"department": "x" * 50}, "department"),
    ],
)
async def test_a_query_out_of_bounds_gets_422(
    service: Running, query: dict[str, str], field: str
) -> None:
    """Every query parameter is bounded: a huge page, a day the calendar cannot shift to UTC or
    written otherwise than YYYY-MM-DD, get a 422 naming it, not a 500 or a guess."""
    response = await service.client.get("/v1/events", params=query)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]] == [field]


async def test_text_that_is_not_text_in_a_cancellation_gets_422(service: Running) -> None:
    """A lone surrogate or bytes that are not UTF-8 in the token (body, query or form) is a 422
    naming `token`, never a 500."""
    url = "/v1/registrations/3fa85f64-5717-4562-b3fc-2c963f66afa6/cancel"
    surrogate = await service.client.post(
        url, content=b'{"token": "\\ud800"}', headers={"content-type": "application/json"}
    )
    not_ascii = await service.client.post(url, json={"token": "été"})
    page = await service.client.get(
        "/inscriptions/3fa85f64-5717-4562-b3fc-2c963f66afa6/annuler?token=%ED%A0%80"
    )
    form = await service.client.post(
        "/inscriptions/3fa85f64-5717-4562-b3fc-2c963f66afa6/annuler",
        content=b"token=%ED%A0%80",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    for response in (surrogate, not_ascii, page, form):
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["detail"]] == ["token"]


async def _registered(service: Running, event_body: Body, **event: Any) -> tuple[str, str]:
    """A registration of claire@example.org; its id and the token of the e-mailed link."""
    created = await create(service, event_body(**event))
    await register(service, created["id"], "claire@example.org")
    mail = service.sink.payloads(REGISTRATIONS.name)[-1]
    return mail["registration_id"], parse_qs(urlparse(mail["cancel_url"]).query)["token"][0]


async def test_a_link_expires_when_its_conference_ends(service: Running, event_body: Body) -> None:
    """Until the conference ends the link cancels; afterwards it is refused with 410."""
    registration_id, token = await _registered(service, event_body)
    service.clock.advance(timedelta(days=31))
    response = await service.client.post(
        f"/v1/registrations/{registration_id}/cancel", json={"token": token}
    )
    assert response.status_code == 410
    page = await service.client.post(
        f"/inscriptions/{registration_id}/annuler", data={"token": token}
    )
    assert page.status_code == 410 and "plus valable" in page.text


async def test_a_link_of_an_earlier_registration_no_longer_cancels(
    service: Running, event_body: Body
) -> None:
    """Cancel, register again: the first link is void (410), the new one works."""
    registration_id, first = await _registered(service, event_body)
    url = f"/v1/registrations/{registration_id}/cancel"
    assert (await service.client.post(url, json={"token": first})).status_code == 200
    created = service.sink.payloads(REGISTRATIONS.name)[0]["event_id"]
    await register(service, created, "claire@example.org")
    renewed = service.sink.payloads(REGISTRATIONS.name)[-1]
    assert renewed["registration_id"] == registration_id
    assert (await service.client.post(url, json={"token": first})).status_code == 410
    second = parse_qs(urlparse(renewed["cancel_url"]).query)["token"][0]
    assert (await service.client.post(url, json={"token": second})).status_code == 200


async def test_a_link_sent_before_the_signed_tokens_still_cancels(
    service: Running, event_body: Body
) -> None:
    """Links already in mailboxes (a bare HMAC of the id) keep working until the conference."""
    registration_id, _ = await _registered(service, event_body)
    mac = hmac.new(
        DEFAULT_SIGNING_SECRET.encode(), f"cancel:{registration_id}".encode(), hashlib.sha256
    )
    legacy = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
    response = await service.client.post(
        f"/v1/registrations/{registration_id}/cancel", json={"token": legacy}
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


async def test_the_portal_page_is_the_same_for_a_new_or_a_known_address(
    service: Running, event_body: Body
) -> None:
    """The page after the form says the same words whether the address was registered or not."""
    event = await create(service, event_body())
    url = f"/evenements/{event['id']}/inscription"
    pages = [
        await service.client.post(url, data={"name": name, "email": email, "consent": "yes"})
        for name, email in (("Claire", "claire@example.org"), ("Mallory", "Claire@example.org"),
                            ("Zoé", "zoe@example.org"))
    ]  # fmt: skip
    assert {p.status_code for p in pages} == {200}
    assert pages[0].text == pages[1].text == pages[2].text
    assert "Merci, c'est noté" in pages[0].text and "token" not in pages[0].text


async def test_a_stranger_is_rate_limited(limited: Running, event_body: Body) -> None:
    """Requests with a body from one client beyond the burst get 429 with Retry-After, and a
    browser's form a short page rather than JSON."""
    event = await create(limited, event_body())
    url = f"/v1/events/{event['id']}/registrations"
    codes = [
        (await limited.client.post(url, json={"name": "Claire", "email": f"c{n}@example.org", "consent": True})).status_code
        for n in range(2)
    ]  # fmt: skip
    assert codes == [202, 429]  # the organiser's creation took the first token
    page = await limited.client.post(
        f"/evenements/{event['id']}/inscription",
        data={"name": "Zoé"},
        headers={"accept": "text/html"},
    )
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
    assert "réessayer dans une minute" in page.text and page.headers["retry-after"]


async def test_a_body_over_the_limit_gets_413(limited: Running) -> None:
    """An organiser's body over EVENTS_MAX_BODY_BYTES is refused before it is parsed."""
    response = await limited.client.post(
        "/v1/events", json={"description": "x" * 4096}, headers=limited.headers["second-souffle"]
    )
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"


@pytest.mark.parametrize(
    "path",
    [
        "/evenements",
        "/v1/events",
        "/inscriptions/3fa85f64-5717-4562-b3fc-2c963f66afa6/annuler",
        "/nowhere",
    ],
)
async def test_security_headers_on_every_page(service: Running, path: str) -> None:
    """Every answer, pages, API and errors alike, carries the security headers."""
    response = await service.client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "strict-transport-security" not in response.headers


async def test_hsts_when_behind_tls(sqlite_url: str) -> None:
    """EVENTS_HSTS_MAX_AGE_S adds Strict-Transport-Security."""
    async for tls in running(settings_for(sqlite_url, hsts_max_age_s=31536000)):
        response = await tls.client.get("/evenements")
        assert response.headers["strict-transport-security"] == "max-age=31536000"


async def test_metrics_and_openapi_are_for_operators_only(sqlite_url: str) -> None:
    """In production `/metrics` and `/openapi.json` are not on the public port; `/docs` never."""
    async for public in running(settings_for(sqlite_url, **PRODUCTION)):
        assert (await public.client.get("/metrics")).status_code == 404
        assert (await public.client.get("/openapi.json")).status_code == 404
        assert (await public.client.get("/evenements")).status_code == 200
    async for development in running(settings_for(sqlite_url)):
        assert (await development.client.get("/metrics")).status_code == 200
        assert (await development.client.get("/openapi.json")).status_code == 200
        assert (await development.client.get("/docs")).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/events", "GET, POST"),
        ("DELETE", "/v1/events/3fa85f64-5717-4562-b3fc-2c963f66afa6", "GET, PATCH"),
    ],
)
async def test_a_405_names_every_method_of_the_path(
    service: Running, method: str, path: str, allowed: str
) -> None:
    """`Allow` lists all the methods the path takes, not only those of the first route matched
    (found by the fuzz test)."""
    response = await service.client.request(method, path, headers=service.headers["second-souffle"])
    assert response.status_code == 405 and response.headers["allow"] == allowed
