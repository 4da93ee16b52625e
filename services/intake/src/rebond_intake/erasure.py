"""The erasure secret: what lets a person, and only them, withdraw and have their data erased.

It is derived from the reference with an HMAC under intake's key (`INTAKE_ERASURE_KEY`) rather
than drawn at random and stored: nothing is written when a submission is accepted, every replica
can check it from the first instant, and a retried submission (same Idempotency-Key, same
reference) gets the same secret back instead of voiding the first one. Anyone holding the key
could compute every secret, so it is a secret like the notifier's link key: from the
environment or a file, refused in production when left at its development value.

Submissions accepted before secrets were derived have a random secret whose SHA-256 the store
kept; `matches_stored` still checks those.
"""

import base64
import hashlib
import hmac

#: Versioned, so that another derivation could be told apart some day.
_CONTEXT = b"rebond-erasure-secret-v1:"


def erasure_secret(key: str, reference: str) -> str:
    """The secret shown with `reference` (43 URL-safe characters, 256 bits)."""
    mac = hmac.digest(key.encode("utf-8"), _CONTEXT + reference.encode("ascii"), "sha256")
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def matches(key: str, reference: str, given: str) -> bool:
    """Whether `given` is the secret of `reference` (compared in constant time)."""
    return hmac.compare_digest(erasure_secret(key, reference).encode(), given.encode("utf-8"))


def matches_stored(secret_hash: str, given: str) -> bool:
    """Whether `given` is the random secret whose hash an older intake kept."""
    digest = hashlib.sha256(given.encode("utf-8")).hexdigest()
    return hmac.compare_digest(secret_hash.encode(), digest.encode())
