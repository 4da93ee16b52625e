"""Signatures: the webhooks' (Standard Webhooks) and the answer links' tokens (itsdangerous).

Webhook: the Standard Webhooks scheme (https://www.standardwebhooks.com), so that an association
can check a call with a ready-made verifier: `webhook-id` (the delivery id, the same on every
attempt), `webhook-timestamp` (unix seconds of this attempt) and `webhook-signature:
v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`. The id is signed with the body, so a
receiver deduplicating on it cannot be fooled by a captured body replayed under a new id, and the
timestamp bounds replays of a whole call. A secret `whsec_<base64>` is the key base64-decoded.

Answer token (and follow-up token): an itsdangerous `URLSafeSerializer` token (HMAC-SHA256, salted so that no other
use of the same secret can mint one) of claims binding the referral, its reference, the
association, the action and an absolute expiry: the association's deadline. The expiry is a
signed claim rather than itsdangerous's age since signing because it is a date (the deadline)
that no age fixed at signing time could express for both the first e-mail and the reminder.
The person's follow-up links ("Avez-vous été contacté·e ?") are tokens of the same kind under
their own salt, so neither kind of token is ever taken for the other.
"""

import base64
import binascii
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from itsdangerous import BadData, URLSafeSerializer
from standardwebhooks import Webhook

from rebond_contracts.associations import AssociationId

#: The Standard Webhooks headers, in the spelling of the spec.
WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 (the form's prefix, not a secret)
#: What the spec asks of a symmetric key: at least 24 random bytes.
WEBHOOK_KEY_MIN_BYTES = 24

#: Changing it invalidates every answer link in flight (their page says how to answer anyway).
_ANSWER_SALT = "rebond.answer-link.v2"
#: The follow-up links' salt: a token of one kind never reads as the other.
_FOLLOW_UP_SALT = "rebond.follow-up-link.v1"
#: Longer than any real token (about 250 characters); the path segment is checked against this
#: before anything decodes it, so a lone surrogate or a megabyte of text never reaches a codec.
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,1024}")


class WebhookSecretError(ValueError):
    """A `whsec_` secret whose rest is not base64."""


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a configured webhook secret.

    `whsec_<base64>` (the Standard Webhooks form) is decoded; any other value is used as written
    (its UTF-8 bytes), as before the Standard Webhooks scheme: an association holding such a
    value verifies with `whsec_` + base64(value), which is the same key."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        return secret.encode()
    text = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as error:
        raise WebhookSecretError("the part after whsec_ is not base64") from error


def new_webhook_secret() -> str:
    """A fresh secret in the Standard Webhooks form: `whsec_` and 32 random bytes in base64."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_headers(
    key: bytes, message_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt at delivering `body`."""
    at = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(key).sign(message_id, datetime.fromtimestamp(at, UTC), body)
    return {WEBHOOK_ID: message_id, WEBHOOK_TIMESTAMP: str(at), WEBHOOK_SIGNATURE: signature}


class Action(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"


@dataclass(frozen=True)
class AnswerClaims:
    referral_id: UUID
    reference: str
    association_id: AssociationId
    action: Action
    #: Unix seconds: the association's deadline for this referral.
    expires_at: int


class TokenError(ValueError):
    """Base of the reasons an answer link is refused."""


class TokenInvalid(TokenError):
    """Malformed, tampered with, or signed otherwise (an answer link made before
    the links became itsdangerous tokens included)."""


class TokenExpired(TokenError):
    """Authentic but past its expiry."""

    def __init__(self, claims: AnswerClaims) -> None:
        super().__init__("expired")
        self.claims = claims


@dataclass(frozen=True)
class FollowUpClaims:
    """The person's answer to "were you contacted?" about one referral, until `expires_at`."""

    referral_id: UUID
    reference: str
    association_id: AssociationId
    contacted: bool
    #: Unix seconds.
    expires_at: int


class FollowUpExpired(TokenError):
    """An authentic follow-up link past its expiry."""


def _serializer(key: bytes, salt: str = _ANSWER_SALT) -> URLSafeSerializer:
    return URLSafeSerializer(key, salt=salt, signer_kwargs={"digest_method": hashlib.sha256})


def make_follow_up_token(key: bytes, claims: FollowUpClaims) -> str:
    return _serializer(key, _FOLLOW_UP_SALT).dumps(
        {
            "r": str(claims.referral_id),
            "ref": claims.reference,
            "a": claims.association_id.value,
            "c": claims.contacted,
            "e": claims.expires_at,
        }
    )


def read_follow_up_token(key: bytes, token: str, *, now: float | None = None) -> FollowUpClaims:
    """The claims of an authentic, unexpired follow-up token; `TokenInvalid` or
    `FollowUpExpired` otherwise (an answer link's token is invalid here: another salt)."""
    raw = _loads(key, token, _FOLLOW_UP_SALT)
    try:
        if not isinstance(raw["c"], bool):
            raise TypeError("contacted is not a boolean")
        claims = FollowUpClaims(
            referral_id=UUID(raw["r"]),
            reference=str(raw["ref"]),
            association_id=AssociationId(raw["a"]),
            contacted=raw["c"],
            expires_at=int(raw["e"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise TokenInvalid("bad claims") from error
    if (time.time() if now is None else now) >= claims.expires_at:
        raise FollowUpExpired("expired")
    return claims


def _loads(key: bytes, token: str, salt: str) -> Any:
    if not _TOKEN.fullmatch(token):
        raise TokenInvalid("not a token")
    try:
        return _serializer(key, salt).loads(token)
    except BadData as error:
        raise TokenInvalid("bad signature") from error


def make_token(key: bytes, claims: AnswerClaims) -> str:
    return _serializer(key).dumps(
        {
            "r": str(claims.referral_id),
            "ref": claims.reference,
            "a": claims.association_id.value,
            "x": claims.action.value,
            "e": claims.expires_at,
        }
    )


def read_token(key: bytes, token: str, *, now: float | None = None) -> AnswerClaims:
    """The claims of an authentic, unexpired token; `TokenInvalid` or `TokenExpired` otherwise."""
    raw = _loads(key, token, _ANSWER_SALT)
    try:
        claims = AnswerClaims(
            referral_id=UUID(raw["r"]),
            reference=str(raw["ref"]),
            association_id=AssociationId(raw["a"]),
            action=Action(raw["x"]),
            expires_at=int(raw["e"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise TokenInvalid("bad claims") from error
    if (time.time() if now is None else now) >= claims.expires_at:
        raise TokenExpired(claims)
    return claims
