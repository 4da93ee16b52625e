"""Credentials: argon2id passwords, TOTP codes, random tokens kept only as hashes, and the
session and lockout rules. Pure functions and small objects; the store keeps the state.

- Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second
  recommended profile); a hash made with older parameters is replaced at the next sign-in.
- Session and invitation tokens are 256 random bits; the store keeps their SHA-256 only, so a
  copy of the database opens no session and uses no invitation. (A salt or a slow hash adds
  nothing for 256 random bits: nobody can enumerate them.)
- TOTP (RFC 6238, 30 s steps, one step of drift either way): the step accepted is recorded and
  a code is never accepted twice (`Store.open_session`).
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 12
#: argon2id with argon2-cffi's defaults (t=3, m=64 MiB, p=4). Tests swap in a cheaper one.
PRODUCTION_HASHER = PasswordHasher()
_hasher = PRODUCTION_HASHER


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches; an account without password never matches. Without one,
    a dummy hash is verified anyway, so an unknown account costs the same time as a known one
    (the reply's timing does not say which addresses have accounts)."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


def password_problem(password: str, confirmation: str) -> str | None:
    """What is wrong with a new password (French, for the form), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Choisissez un mot de passe d'au moins {MIN_PASSWORD_LENGTH} caractères."
    if password != confirmation:
        return "Les deux mots de passe ne sont pas identiques."
    return None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens."""
    return hmac.compare_digest(a.encode(), b.encode())


# --- TOTP ---------------------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="Rebond coordination")


def totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step `code` belongs to (this one, or one either side), or None if it is wrong."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for candidate in (step, step - 1, step + 1):
        if same(totp.generate_otp(candidate), code):
            return candidate
    return None


# --- sessions and lockout -----------------------------------------------------------------


@dataclass(frozen=True)
class SessionRules:
    idle: timedelta
    absolute: timedelta

    def expired(self, created_at: datetime, last_seen_at: datetime, now: datetime) -> bool:
        """A session ends after `idle` without a request, and `absolute` after sign-in."""
        return now - last_seen_at >= self.idle or now - created_at >= self.absolute

    def worth_touching(self, last_seen_at: datetime, now: datetime) -> bool:
        """Whether to record this request's time: at most once a minute, so that reading pages
        does not write a row per request (the idle limit is minutes long)."""
        return now - last_seen_at >= timedelta(minutes=1)


def locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and now < locked_until
