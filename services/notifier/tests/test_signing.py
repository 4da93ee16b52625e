"""Webhook signatures (Standard Webhooks) and answer-link tokens (pure)."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from itsdangerous import URLSafeSerializer
from standardwebhooks import Webhook, WebhookVerificationError

from rebond_contracts.associations import AssociationId
from rebond_notifier.signing import (
    WEBHOOK_ID,
    WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP,
    Action,
    AnswerClaims,
    TokenExpired,
    TokenInvalid,
    WebhookSecretError,
    make_token,
    new_webhook_secret,
    read_token,
    webhook_headers,
    webhook_key,
)

SECRET = b"s" * 32
BODY = b'{"subject":"RB-7K3M-Q9XA-2DFE-W8NB"}'
#: The test vector published with the Standard Webhooks reference libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    """The spec's published secret, id, timestamp and body give its published signature."""
    headers = webhook_headers(
        webhook_key(SPEC_SECRET), SPEC_ID, SPEC_BODY, timestamp=SPEC_TIMESTAMP
    )
    assert headers == {
        WEBHOOK_ID: SPEC_ID,
        WEBHOOK_TIMESTAMP: str(SPEC_TIMESTAMP),
        WEBHOOK_SIGNATURE: SPEC_SIGNATURE,
    }


def _verify(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    """What an association does with a ready-made verifier (the `standardwebhooks` package)."""
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        (lambda h, b: (h, b), True),
        (lambda h, b: ({**h, WEBHOOK_ID: "another-delivery"}, b), False),  # id swapped
        (lambda h, b: (h, b + b" "), False),  # body changed
        (lambda h, b: ({**h, WEBHOOK_TIMESTAMP: str(int(time.time()) - 301)}, b), False),
        (lambda h, b: ({k: v for k, v in h.items() if k != WEBHOOK_ID}, b), False),
    ],
)
def test_a_ready_made_verifier_checks_id_timestamp_and_body(change, valid: bool) -> None:  # type: ignore[no-untyped-def]
    """The signature covers the delivery id, the timestamp and the body: changing any fails."""
    secret = new_webhook_secret()
    headers = webhook_headers(webhook_key(secret), str(uuid.uuid4()), BODY)
    assert _verify(secret, *reversed(change(headers, BODY))) is valid


def test_a_secret_given_before_whsec_is_the_key_as_written() -> None:
    """A plain secret signs with its own bytes; `whsec_` + its base64 verifies those calls."""
    plain = "fault-suite-webhook-secret-of-enough-length"
    assert webhook_key(plain) == plain.encode()
    headers = webhook_headers(webhook_key(plain), "d-1", BODY)
    assert _verify("whsec_" + base64.b64encode(plain.encode()).decode(), BODY, headers)


def test_a_new_secret_is_whsec_and_32_random_bytes() -> None:
    """`new-webhook-secret` gives the Standard Webhooks form, a fresh one each time."""
    first, second = new_webhook_secret(), new_webhook_secret()
    assert first.startswith("whsec_") and first != second
    assert len(webhook_key(first)) == 32


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_@@@@"])
def test_a_whsec_secret_that_is_not_base64_is_refused(secret: str) -> None:
    """A `whsec_` secret whose rest is not base64 is an error, not a silently different key."""
    with pytest.raises(WebhookSecretError):
        webhook_key(secret)


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
    """The same signature over claims whose action was turned into a decline."""
    _, signature = token.rsplit(".", 1)
    claims = {**URLSafeSerializer(SECRET).loads_unsafe(token)[1], "x": "decline"}
    return URLSafeSerializer(SECRET).dump_payload(claims).decode() + "." + signature


def _legacy_token(claims: AnswerClaims) -> str:
    """A link of the notifier before itsdangerous: base64url JSON, then its own HMAC."""
    head = base64.urlsafe_b64encode(
        json.dumps({"r": str(claims.referral_id), "ref": claims.reference,
                    "a": claims.association_id.value, "x": claims.action.value,
                    "e": claims.expires_at}, separators=(",", ":")).encode()
    ).rstrip(b"=").decode()  # fmt: skip
    mac = hmac.new(SECRET, b"rebond-answer-v1." + head.encode(), hashlib.sha256).digest()
    return head + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "tamper",
    [
        _swap_action,  # accept turned into decline
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: t.rsplit(".", 1)[0],  # signature removed
        lambda t: "not-a-token",
        lambda t: t + "!!",
        lambda t: t + "\ud800",  # a lone surrogate, as %ED%A0%80 decodes
        lambda t: t * 10,  # far too long
        lambda t: _legacy_token(CLAIMS),  # a link e-mailed before the change
    ],
)
def test_tampered_token_is_invalid(tamper) -> None:  # type: ignore[no-untyped-def]
    """Any change to the token, or an old-format link, is refused as invalid, never a crash."""
    with pytest.raises(TokenInvalid):
        read_token(SECRET, tamper(make_token(SECRET, CLAIMS)), now=0)


def test_token_from_another_key_is_invalid() -> None:
    """A token signed with another key is refused as invalid."""
    with pytest.raises(TokenInvalid):
        read_token(SECRET, make_token(b"k" * 32, CLAIMS), now=0)
