"""Abuse protection, as plain ASGI middleware shared by the services with public pages: text
that is not text, rate limit per client, body limit, content type, security headers."""

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from rebond_http.clients import ClientAddress
from rebond_http.inputs import Loc, json_errors, path_errors, urlencoded_errors
from rebond_http.settings import EdgeSettings

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """Per-client token buckets; the oldest idle clients are forgotten beyond `max_clients`."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self._clock = clock
        self._max = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str) -> float:
        """0 when the client may go on; else the seconds to wait before the next token."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.pop(client, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[client] = bucket
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def _wants_html(headers: Mapping[str, str]) -> bool:
    """A browser posting a form (the events portal) reads a page, not JSON."""
    return "text/html" in headers.get("accept", "")


async def reply(
    send: Send,
    status: int,
    body: dict[str, Any],
    extra: list[Any],
    *,
    html: bool = False,
) -> None:
    if html:
        text = escape(str(body.get("message", "")))
        payload = (
            '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
            f"<title>{status}</title></head><body><p>{text}</p></body></html>"
        ).encode()
        media = b"text/html; charset=utf-8"
    else:
        payload = json.dumps(body, ensure_ascii=False).encode()
        media = b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media),
                (b"content-length", str(len(payload)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


#: Intake's words (its API takes only the questionnaire); events passes its own.
SUBMISSION_TEXTS: Mapping[int, tuple[str, str]] = {
    415: ("unsupported_media_type", "Envoyez le questionnaire en JSON (application/json)."),
    413: ("payload_too_large", "Le questionnaire envoyé est trop volumineux."),
    429: ("too_many_requests", "Trop d'envois depuis votre connexion ; réessayez dans un moment."),
}
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def invalid_characters(headers: Mapping[str, str], locations: list[Loc]) -> dict[str, Any]:
    """The 422 body for text that is not text, one entry per location (`field`: dotted path
    without `body`, `query` or `path`); a service with another 422 shape passes its own."""
    return {
        "detail": [
            {
                "field": ".".join(str(p) for p in loc[1:]) or str(loc[0]),
                "loc": list(loc),
                "msg": "Le texte contient des caractères invalides. "
                "(The text contains invalid characters.)",
                "type": "invalid_characters",
            }
            for loc in locations
        ]
    }


class SubmissionGuard:
    """Every request: text that cannot be text refused (422, `rebond_http.inputs`). On `POST`,
    `PUT` and `PATCH`: rate limit per client (429), allowed media types only (415), body size
    limit (413).

    The body is read in full (at most `max_body_bytes`) before the app sees it, so an oversized
    body never reaches the parser. The client is the one `clients` names (the TCP peer, or the
    right-most untrusted `X-Forwarded-For` hop behind a trusted proxy). A request without a
    body (an organiser's `POST …/cancel`) needs no content type.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: TokenBucketLimiter,
        max_body_bytes: int,
        clients: ClientAddress | None = None,
        media_types: Collection[str] = (JSON,),
        texts: Mapping[int, tuple[str, str]] = SUBMISSION_TEXTS,
        invalid: Callable[[Mapping[str, str], list[Loc]], dict[str, Any]] = invalid_characters,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes
        self.clients = clients or ClientAddress()
        self.media_types = frozenset(media_types)
        self.texts = texts
        self.invalid = invalid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        errors = path_errors(scope.get("raw_path") or scope["path"].encode())
        errors += urlencoded_errors(scope.get("query_string", b""), "query")
        if errors:
            await reply(send, 422, self.invalid(headers, errors), [])
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        html = _wants_html(headers)
        wait = self.limiter.take(self.clients.key(scope))
        if wait > 0:
            code, text = self.texts[429]
            retry = str(max(1, math.ceil(wait)))
            await reply(
                send,
                429,
                {"error": code, "message": text, "retry_after_s": int(retry)},
                [(b"retry-after", retry.encode())],
                html=html,
            )
            return
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media and not self._accepted(media):
            await self._refuse_media(send, html)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send, html)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(send, html)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if not media and body:
            await self._refuse_media(send, html)
            return
        errors = urlencoded_errors(body, "body") if media == FORM else json_errors(body)
        if errors:
            await reply(send, 422, self.invalid(headers, errors), [])
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            message: Message = await receive()
            return message

        await self.app(scope, replay, send)

    def _accepted(self, media: str) -> bool:
        if media in self.media_types:
            return True
        return (
            JSON in self.media_types
            and media.startswith("application/")
            and (media.endswith("+json"))
        )

    async def _refuse_media(self, send: Send, html: bool) -> None:
        code, text = self.texts[415]
        await reply(send, 415, {"error": code, "message": text}, [], html=html)

    async def _too_large(self, send: Send, html: bool) -> None:
        code, text = self.texts[413]
        await reply(
            send,
            413,
            {"error": code, "message": text, "max_bytes": self.max_body_bytes},
            [(b"connection", b"close")],
            html=html,
        )


def edge_limits(settings: EdgeSettings) -> dict[str, Any]:
    """`SubmissionGuard`'s limits from a service's edge settings, the same in every service
    with public pages: the rate per client (`*_RATE_LIMIT_PER_MINUTE`, `*_RATE_LIMIT_BURST`),
    the body size (`*_MAX_BODY_BYTES`) and who the client is (`*_TRUSTED_PROXIES`)."""
    return {
        "limiter": TokenBucketLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
        "max_body_bytes": settings.max_body_bytes,
        "clients": ClientAddress(settings.trusted_proxies),
    }


class SecurityHeaders:
    """Adds the security headers to every HTTP response; `Strict-Transport-Security` too when
    `hsts_max_age_s` is set (only behind TLS: a browser that saw it refuses plain HTTP for that
    long, so a service reached over plain HTTP must not send it)."""

    def __init__(self, app: ASGIApp, *, hsts_max_age_s: int = 0) -> None:
        self.app = app
        self.headers = list(SECURITY_HEADERS)
        if hsts_max_age_s > 0:
            self.headers.append(
                (b"strict-transport-security", f"max-age={hsts_max_age_s}".encode())
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in self.headers if h[0] not in present),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)
