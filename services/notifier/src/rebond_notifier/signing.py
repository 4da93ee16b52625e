"""Signatures: webhook bodies (`X-Rebond-Signature`) and the answer links' expiring tokens.

Webhook: `X-Rebond-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
Answer token: `<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, first part))>`, the claims
binding the referral, its reference, the association, the action and an expiry.
"""

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from rebond_contracts.associations import AssociationId

SIGNATURE_HEADER = "X-Rebond-Signature"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def sign_webhook(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The `X-Rebond-Signature` header value for `body`."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify_webhook(
    secret: bytes, body: bytes, header: str, *, tolerance_s: int = 300, now: int | None = None
) -> bool:
    """What a receiver does: recompute the HMAC and refuse stale timestamps (replays)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    now = int(time.time()) if now is None else now
    if abs(now - t) > tolerance_s:
        return False
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class Action(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"


@dataclass(frozen=True)
class AnswerClaims:
    referral_id: UUID
    reference: str
    association_id: AssociationId
    action: Action
    expires_at: int


class TokenError(ValueError):
    """Base of the reasons an answer link is refused."""


class TokenInvalid(TokenError):
    """Malformed or tampered with."""


class TokenExpired(TokenError):
    """Authentic but past its expiry."""

    def __init__(self, claims: AnswerClaims) -> None:
        super().__init__("expired")
        self.claims = claims


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(key: bytes, claims: AnswerClaims) -> str:
    body = json.dumps(
        {
            "r": str(claims.referral_id),
            "ref": claims.reference,
            "a": claims.association_id.value,
            "x": claims.action.value,
            "e": claims.expires_at,
        },
        separators=(",", ":"),
    ).encode()
    head = _b64(body)
    mac = hmac.new(key, b"rebond-answer-v1." + head.encode(), hashlib.sha256).digest()
    return f"{head}.{_b64(mac)}"


def read_token(key: bytes, token: str, *, now: int | None = None) -> AnswerClaims:
    """The claims of an authentic, unexpired token; `TokenInvalid` or `TokenExpired` otherwise."""
    if not _TOKEN.fullmatch(token):
        raise TokenInvalid("not a token")
    head, _, mac = token.partition(".")
    expected = hmac.new(key, b"rebond-answer-v1." + head.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(mac)
    except ValueError as error:
        raise TokenInvalid("bad signature encoding") from error
    if not hmac.compare_digest(expected, given):
        raise TokenInvalid("bad signature")
    try:
        raw = json.loads(_unb64(head))
        claims = AnswerClaims(
            referral_id=UUID(raw["r"]),
            reference=str(raw["ref"]),
            association_id=AssociationId(raw["a"]),
            action=Action(raw["x"]),
            expires_at=int(raw["e"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise TokenInvalid("bad claims") from error
    if (int(time.time()) if now is None else now) >= claims.expires_at:
        raise TokenExpired(claims)
    return claims
