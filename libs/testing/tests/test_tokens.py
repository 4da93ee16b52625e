"""`forged` gives a token that its signer refuses, whatever the signature it was given."""

import pytest
from itsdangerous import BadSignature, URLSafeSerializer

from rebond_testing.tokens import forged


def test_a_forged_token_is_refused_by_its_signer() -> None:
    """Whatever the signature: 3,000 of them, where changing the last two characters left
    two of them genuine."""
    signer = URLSafeSerializer("secret", salt="test")
    for payload in range(3000):
        token = signer.dumps({"id": payload})
        assert forged(token) != token
        with pytest.raises(BadSignature):
            signer.loads(forged(token))


def test_a_signature_starting_with_the_replacement_gets_another() -> None:
    assert forged("payload.Axyz") == "payload.Bxyz"
    assert forged("payload.Bxyz") == "payload.Axyz"


def test_what_is_not_signed_is_refused() -> None:
    with pytest.raises(ValueError, match="not a signed token"):
        forged("payload.")
