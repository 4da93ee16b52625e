"""The public edge's guard as ASGI middleware: who the client is behind proxies, its bucket,
media types, text that is not text."""

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from rebond_http.clients import ClientAddress
from rebond_http.guard import FORM, JSON, SubmissionGuard, TokenBucketLimiter, edge_limits
from rebond_http.settings import EdgeSettings

PROXY = "10.0.0.7"


async def echo(request: Request) -> JSONResponse:
    is_form = "form" in request.headers.get("content-type", "")
    form = await request.form() if request.method == "POST" and is_form else {}
    return JSONResponse({"query": dict(request.query_params), "form": dict(form)})


async def metrics(_: Request) -> PlainTextResponse:
    return PlainTextResponse("rebond_up 1\n")


def guarded(trusted: tuple[str, ...] = (), burst: int = 2, **options: Any) -> Starlette:
    """A bare app behind the guard: `burst` requests, then one more a minute."""
    app = Starlette(
        routes=[
            Route("/echo/{anything}", echo, methods=["GET", "POST"]),
            Route("/metrics", metrics),
        ]
    )
    app.add_middleware(
        SubmissionGuard,
        limiter=TokenBucketLimiter(1, burst),
        max_body_bytes=1024,
        clients=ClientAddress(trusted),
        **options,
    )
    return app


def client(app: Any, peer: str = "203.0.113.9", port: int = 80) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 1234))
    return httpx.AsyncClient(transport=transport, base_url=f"http://edge.test:{port}")


async def post(http: httpx.AsyncClient, forwarded: str | None = None) -> httpx.Response:
    headers = {"x-forwarded-for": forwarded} if forwarded is not None else {}
    return await http.post("/echo/x", json={}, headers=headers)


async def statuses(http: httpx.AsyncClient, forwarded: str | None, times: int = 3) -> list[int]:
    return [(await post(http, forwarded)).status_code for _ in range(times)]


async def test_behind_a_trusted_proxy_two_clients_get_separate_buckets() -> None:
    """Through the trusted ingress, each person's address has its own bucket."""
    async with client(guarded(("10.0.0.0/8",)), peer=PROXY) as http:
        assert await statuses(http, "198.51.100.1") == [200, 200, 429]
        assert await statuses(http, "198.51.100.2") == [200, 200, 429]


async def test_a_forged_header_from_an_untrusted_peer_is_ignored() -> None:
    """A client sending X-Forwarded-For itself does not get a fresh bucket per made-up address."""
    async with client(guarded(("10.0.0.0/8",)), peer="203.0.113.9") as http:
        codes = [(await post(http, f"198.51.100.{n}")).status_code for n in range(3)]
        assert codes == [200, 200, 429]


async def test_the_right_most_untrusted_hop_is_the_client() -> None:
    """Addresses the client wrote to the left of what the proxies appended are never used."""
    async with client(guarded(("10.0.0.0/8",)), peer=PROXY) as http:
        # The client forged "1.1.1.N"; the ingress appended the client's real address, then
        # an inner trusted proxy appended the ingress.
        codes = [
            (await post(http, f"1.1.1.{n}, 198.51.100.1, 10.1.2.3")).status_code for n in range(3)
        ]
        assert codes == [200, 200, 429]


async def test_rotating_addresses_inside_one_ipv6_slash_64_share_a_bucket() -> None:
    """IPv6 clients are counted per /64: new interface ids do not give new tokens."""
    async with client(guarded(), peer="2001:db8:1:2::1") as http:
        assert await statuses(http, None, 2) == [200, 200]
    async with client(guarded(), peer="2001:db8:1:2:ffff::9") as http:
        assert await statuses(http, None, 1) == [200]
    app = guarded(("2001:db8:ffff::/48",))
    async with client(app, peer="2001:db8:ffff::1") as http:
        rotating = [(await post(http, f"2001:db8:1:2:{n:x}::1")).status_code for n in range(3)]
        assert rotating == [200, 200, 429]
        assert (await post(http, "2001:db8:1:3::1")).status_code == 200  # the next /64


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # untrusted peer: header ignored
        (PROXY, "198.51.100.1", "198.51.100.1"),
        (PROXY, "198.51.100.1:4711", "198.51.100.1"),  # a port after the address
        (PROXY, "[2001:db8::5]:443", "2001:db8::/64"),
        (PROXY, "garbage, 198.51.100.1", "198.51.100.1"),
        (PROXY, "198.51.100.1, garbage", PROXY),  # a hop no proxy would write: stop there
        (PROXY, "10.0.0.1, 10.0.0.2", "10.0.0.1"),  # only proxies: the left-most
        (PROXY, None, PROXY),
        ("::ffff:10.0.0.7", "198.51.100.1", "198.51.100.1"),  # a dual-stack socket
    ],
)
def test_client_address_behind_proxies(peer: str, forwarded: str | None, expected: str) -> None:
    """Which bucket a request goes to, for the shapes X-Forwarded-For takes."""
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    scope = {"client": (peer, 1), "headers": headers}
    assert ClientAddress(["10.0.0.0/8"]).key(scope) == expected


def test_no_trusted_proxy_means_the_peer() -> None:
    """Without trusted proxies the header is never read, and an unknown peer has one bucket."""
    scope = {"client": ("10.0.0.7", 1), "headers": [(b"x-forwarded-for", b"198.51.100.1")]}
    assert ClientAddress().key(scope) == "10.0.0.7"
    assert ClientAddress().key({"client": None, "headers": []}) == "unknown"


@pytest.mark.parametrize(
    ("request_args", "loc"),
    [
        ({"url": "/echo/x?token=%ED%A0%80"}, ["query", "token"]),
        ({"url": "/echo/x?ok=1&bad=%FF"}, ["query", "bad"]),
        ({"url": "/echo/%ED%A0%80"}, ["path"]),
        (
            {"url": "/echo/x", "content": b'{"a": {"secret": "\\ud800"}}', "media": JSON},
            ["body", "a", "secret"],
        ),
        ({"url": "/echo/x", "content": b'["ok", "\\udc00"]', "media": JSON}, ["body", 1]),
        ({"url": "/echo/x", "content": b"token=%ED%A0%80", "media": FORM}, ["body", "token"]),
        ({"url": "/echo/x", "content": b'{"a": "\xff"}', "media": JSON}, ["body"]),
    ],
)
async def test_text_that_is_not_text_gets_422_naming_where(
    request_args: dict[str, Any], loc: list[Any]
) -> None:
    """A lone surrogate or bytes that are not UTF-8, in the path, query or body, get a 422 that
    names the field, before any route sees them."""
    app = guarded(media_types=(JSON, FORM))
    async with client(app) as http:
        media = request_args.pop("media", None)
        if media is None:
            reply = await http.get(request_args["url"])
        else:
            reply = await http.post(
                request_args["url"],
                content=request_args["content"],
                headers={"content-type": media},
            )
    assert reply.status_code == 422, reply.text
    [entry] = reply.json()["detail"]
    assert entry["loc"] == loc and entry["type"] == "invalid_characters"


async def test_valid_text_passes_untouched() -> None:
    """Accents, emoji (a surrogate pair in JSON) and percent-encoded UTF-8 reach the app as sent."""
    app = guarded(media_types=(JSON, FORM))
    async with client(app) as http:
        query = await http.get("/echo/x", params={"name": "Zoé 🙂"})
        emoji = await http.post(
            "/echo/x", content=b'{"name": "\\ud83d\\ude42"}', headers={"content-type": JSON}
        )
        form = await http.post("/echo/x", data={"name": "Zoé"})
    assert query.json()["query"] == {"name": "Zoé 🙂"}
    assert emoji.status_code == 200 and form.json()["form"] == {"name": "Zoé"}


async def test_media_types_and_bodiless_posts() -> None:
    """Only the listed media types are taken; a POST without a body needs none."""
    async with client(guarded(burst=10)) as http:
        assert (await http.post("/echo/x")).status_code == 200
        form = await http.post("/echo/x", data={"a": "b"})
        assert form.status_code == 415
        unnamed = await http.post("/echo/x", content=b"{}", headers={"content-type": ""})
        assert unnamed.status_code == 415


async def test_a_browser_is_answered_with_a_page() -> None:
    """A form sent by a browser that hits the limit gets a short HTML page, not JSON."""
    html = {"accept": "text/html,application/xhtml+xml"}
    async with client(guarded(media_types=(FORM,))) as http:
        replies = [await http.post("/echo/x", data={"a": "b"}, headers=html) for _ in range(3)]
    assert replies[2].status_code == 429
    assert replies[2].headers["content-type"].startswith("text/html")
    assert "réessayez" in replies[2].text and replies[2].headers["retry-after"]


def test_the_edge_limits_come_from_the_service_s_edge_settings() -> None:
    """The guard counts per client at the configured rate and burst, caps the body, and
    believes `X-Forwarded-For` only from the configured proxies."""

    class Settings(EdgeSettings):
        pass

    limits = edge_limits(
        Settings(
            rate_limit_per_minute=30, rate_limit_burst=2, max_body_bytes=2048,
            trusted_proxies="10.0.0.0/8",
        )  # type: ignore[arg-type]
    )  # fmt: skip
    limiter, clients = limits["limiter"], limits["clients"]
    assert (limiter.rate, limiter.burst, limits["max_body_bytes"]) == (0.5, 2, 2048)
    forwarded = {"client": ("10.1.2.3", 0), "headers": [(b"x-forwarded-for", b"203.0.113.9")]}
    assert str(clients.of(forwarded)) == "203.0.113.9"
