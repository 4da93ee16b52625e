"""Webhook signatures and answer-link tokens (pure)."""

import hashlib
import hmac
import uuid

import pytest

from rebond_contracts.associations import AssociationId
from rebond_notifier.signing import (
    Action,
    AnswerClaims,
    TokenExpired,
    TokenInvalid,
    make_token,
    read_token,
    sign_webhook,
    verify_webhook,
)

SECRET = b"s" * 32
BODY = b'{"subject":"RB-7K3M-Q9XA-2DFE-W8NB"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    """The header is t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>, as documented."""
    header = sign_webhook(SECRET, BODY, timestamp=1_700_000_000)
    expected = hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


@pytest.mark.parametrize(
    ("secret", "body", "now", "valid"),
    [
        (SECRET, BODY, 1_700_000_010, True),
        (b"another secret", BODY, 1_700_000_010, False),
        (SECRET, BODY + b" ", 1_700_000_010, False),
        (SECRET, BODY, 1_700_000_000 + 301, False),  # replayed too late
    ],
)
def test_verification(secret: bytes, body: bytes, now: int, valid: bool) -> None:
    """A receiver accepts only the right secret, the exact body and a recent timestamp."""
    header = sign_webhook(SECRET, BODY, timestamp=1_700_000_000)
    assert verify_webhook(secret, body, header, now=now) is valid


@pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", "v1=00"])
def test_malformed_signature_header_is_refused(header: str) -> None:
    """A malformed header is refused, not an exception."""
    assert verify_webhook(SECRET, BODY, header) is False


CLAIMS = AnswerClaims(
    referral_id=uuid.UUID("da6e70fb-f7ab-5902-904a-60821a89176b"),
    reference="RB-7K3M-Q9XA-2DFE-W8NB",
    association_id=AssociationId.SOIXANTE_MILLE_REBONDS,
    action=Action.ACCEPT,
    expires_at=2_000_000_000,
)


def test_token_round_trip() -> None:
    """A fresh token gives back the referral, association and action it was made for."""
    assert read_token(SECRET, make_token(SECRET, CLAIMS), now=1_999_999_999) == CLAIMS


def test_expired_token_is_refused_with_its_claims() -> None:
    """Past its expiry the token is refused as expired (and still names its reference)."""
    with pytest.raises(TokenExpired) as caught:
        read_token(SECRET, make_token(SECRET, CLAIMS), now=2_000_000_000)
    assert caught.value.claims.reference == CLAIMS.reference


def _swap_action(token: str) -> str:
    import base64
    import json

    head, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    claims["x"] = "decline"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{forged}.{mac}"


@pytest.mark.parametrize(
    "tamper",
    [
        _swap_action,  # accept turned into decline
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: t.split(".")[0],  # signature removed
        lambda t: "not-a-token",
        lambda t: t + "!!",
    ],
)
def test_tampered_token_is_invalid(tamper) -> None:  # type: ignore[no-untyped-def]
    """Any change to the token, or a token signed with another key, is refused as invalid."""
    with pytest.raises(TokenInvalid):
        read_token(SECRET, tamper(make_token(SECRET, CLAIMS)), now=0)


def test_token_from_another_key_is_invalid() -> None:
    """A token signed with another key is refused as invalid."""
    with pytest.raises(TokenInvalid):
        read_token(SECRET, make_token(b"k" * 32, CLAIMS), now=0)
