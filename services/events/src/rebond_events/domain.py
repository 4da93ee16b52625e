"""Pure domain rules of the Conférences du rebond: seats, waitlist, invitations, time, tokens.

Nothing here touches a database, Kafka or the clock: callers pass what they know.
"""

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


class RegistrationStatus(StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


class EventStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


# --- Seats -----------------------------------------------------------------------------------


def seats_left(capacity: int, confirmed: int) -> int:
    """Free seats; never negative, even after the capacity was lowered below the confirmed."""
    return max(0, capacity - confirmed)


def status_for_newcomer(capacity: int, confirmed: int) -> RegistrationStatus:
    """A new registration is confirmed while a seat is free, else waitlisted."""
    if seats_left(capacity, confirmed) > 0:
        return RegistrationStatus.CONFIRMED
    return RegistrationStatus.WAITLISTED


def to_promote(capacity: int, confirmed: int, waitlist: Sequence[str]) -> list[str]:
    """Who leaves the waitlist (first come, first served) when seats are free."""
    return list(waitlist[: seats_left(capacity, confirmed)])


# --- Invitations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """An upcoming, not cancelled conference someone could be invited to."""

    event_id: str
    starts_at: datetime
    department: str
    region: str


def choose_invitation(
    candidates: Sequence[Candidate], department: str | None, region: str, now: datetime
) -> tuple[Candidate, Literal["department", "region"]] | None:
    """The next conference in the person's department, else the next one in their region."""
    upcoming = sorted(
        (c for c in candidates if c.starts_at > now), key=lambda c: (c.starts_at, c.event_id)
    )
    if department is not None:
        for candidate in upcoming:
            if candidate.department == department:
                return candidate, "department"
    for candidate in upcoming:
        if candidate.region == region:
            return candidate, "region"
    return None


# --- Time: organisers speak Europe/Paris -----------------------------------------------------


def to_paris(moment: datetime) -> datetime:
    """A naive time is taken as Paris wall-clock time; an aware one is converted to Paris."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=PARIS)
    return moment.astimezone(PARIS)


def to_utc_naive(moment: datetime) -> datetime:
    """How times are stored: UTC without tzinfo (the same on SQLite and PostgreSQL)."""
    return to_paris(moment).astimezone(UTC).replace(tzinfo=None)


def from_utc_naive(stored: datetime) -> datetime:
    """A stored time, back in Europe/Paris."""
    return stored.replace(tzinfo=UTC).astimezone(PARIS)


def start_of_day_paris(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=PARIS)


# --- Identity and signed links ---------------------------------------------------------------


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_digest(email: str) -> str:
    """What is stored to remember an invitation: a hash, never the address."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


def cancel_token(secret: str, registration_id: str) -> str:
    """The signature of a cancellation link for one registration."""
    mac = hmac.new(secret.encode(), f"cancel:{registration_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def valid_cancel_token(secret: str, registration_id: str, token: str) -> bool:
    return hmac.compare_digest(cancel_token(secret, registration_id), token)
