"""Pure domain rules of the Conférences du rebond: conferences and registrations as values,
seats, waitlist, invitations, time, tokens.

Nothing here touches a database, Kafka or the clock: callers pass what they know (`now`
included), and each change returns a new value for the caller to keep.
"""

import base64
import hashlib
import hmac
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from itsdangerous import BadData, URLSafeTimedSerializer

from rebond_contracts.payloads import ConferenceKind, RegistrationChange

PARIS = ZoneInfo("Europe/Paris")


class RegistrationStatus(StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


class EventStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


# --- Conferences and registrations -----------------------------------------------------------


@dataclass(frozen=True)
class Details:
    """What an organiser says of a conference (times aware; shown in Paris time)."""

    title: str
    description: str
    kind: ConferenceKind
    starts_at: datetime
    ends_at: datetime
    venue_address: str
    city: str
    region: str
    department: str
    online_url: str | None
    capacity: int


class Refusal(StrEnum):
    """Why a conference takes no registration."""

    CANCELLED = "the conference is cancelled"
    STARTED = "the conference has already started"


@dataclass(frozen=True)
class Conference:
    id: str
    organiser: str
    details: Details
    status: EventStatus
    #: 1 when scheduled, + 1 with each change (the `.ics` SEQUENCE, the announcements' order).
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def cancelled(self) -> bool:
        return self.status == EventStatus.CANCELLED

    def changed(self, details: Details, now: datetime) -> "Conference":
        return replace(self, details=details, version=self.version + 1, updated_at=now)

    def cancel(self, now: datetime) -> "Conference":
        return replace(self, status=EventStatus.CANCELLED, version=self.version + 1, updated_at=now)

    def refuses_registration(self, now: datetime) -> Refusal | None:
        """Registrations are taken until the conference starts, unless it is cancelled."""
        if self.cancelled:
            return Refusal.CANCELLED
        if self.details.starts_at <= now:
            return Refusal.STARTED
        return None

    def ended(self, now: datetime) -> bool:
        """Cancellation links die with their conference."""
        return self.details.ends_at <= now


@dataclass(frozen=True)
class Registration:
    id: str
    event_id: str
    name: str
    #: As typed: where e-mails go.
    email: str
    #: `email_digest`: who the person is, for one registration per person and conference.
    email_digest: str
    consent: bool
    locale: str
    status: RegistrationStatus
    #: When the person last joined the queue: the waitlist's order, and the links' generation.
    queued_at: datetime
    created_at: datetime
    updated_at: datetime
    #: When an e-mail with the cancellation link was last asked for.
    link_sent_at: datetime | None = None
    #: When the reminder before the conference was asked for (it carries the link too).
    reminded_at: datetime | None = None
    #: The store's insertion order (None until stored): breaks ties of `queued_at`.
    seq: int | None = None

    @property
    def active(self) -> bool:
        return self.status != RegistrationStatus.CANCELLED

    @property
    def generation(self) -> str:
        return link_generation(self.queued_at)

    def with_status(self, status: RegistrationStatus, now: datetime) -> "Registration":
        return replace(self, status=status, updated_at=now)

    def mailed(self, now: datetime) -> "Registration":
        """An e-mail carrying the cancellation link was asked for now."""
        return replace(self, link_sent_at=now)

    def reminded(self, now: datetime) -> "Registration":
        """The reminder before the conference (with the cancellation link) was asked for now."""
        return replace(self, link_sent_at=now, reminded_at=now)

    def requeued(
        self, name: str, email: str, consent: bool, locale: str,
        status: RegistrationStatus, now: datetime,
    ) -> "Registration":  # fmt: skip
        """Registered again after cancelling: back in with what was typed this time, at the end
        of the queue (a new generation: the links of the earlier registration die)."""
        return replace(
            self, name=name, email=email, consent=consent, locale=locale, status=status,
            queued_at=now, updated_at=now,
        )  # fmt: skip


def link_generation(queued_at: datetime) -> str:
    """Which registration of a person a cancellation link belongs to: when it was last queued,
    as naive UTC ISO text (`2027-01-14T17:30:00.123456`). That is the text the links in
    people's mailboxes were signed with when the store kept naive UTC times: the same instant
    must give the same text, or those links would stop cancelling."""
    return queued_at.astimezone(UTC).replace(tzinfo=None).isoformat()


@dataclass(frozen=True)
class Counts:
    """A conference's registrations that hold a seat, and those waiting for one."""

    confirmed: int = 0
    waitlisted: int = 0


class Arrival(StrEnum):
    """What a registration form sent for a conference means, given the person's registration."""

    #: A person not registered: a seat or the waitlist.
    NEW = "new"
    #: A person who cancelled: back in, at the end of the queue.
    BACK = "back"
    #: Already registered: their link is e-mailed again, to the address they registered.
    REMIND = "remind"
    #: Already registered and e-mailed less than `RESEND_AFTER` ago: nothing happens.
    QUIET = "quiet"


def arrival(existing: Registration | None, now: datetime) -> Arrival:
    """What registering does for a person whose registration to the conference is `existing`.

    A repeat changes nothing else (not the name, the address or the place in the queue), so
    typing someone's address sends them their own link and gives the typist nothing.
    """
    if existing is None:
        return Arrival.NEW
    if not existing.active:
        return Arrival.BACK
    return Arrival.REMIND if may_resend(existing.link_sent_at, now) else Arrival.QUIET


def told(status: RegistrationStatus) -> RegistrationChange:
    """What a person registering is told: a seat, or the waitlist."""
    if status == RegistrationStatus.CONFIRMED:
        return RegistrationChange.CONFIRMED
    return RegistrationChange.WAITLISTED


def waitlist_positions(queue: Iterable[Registration]) -> dict[str, int]:
    """Each waitlisted registration's place (from 1), `queue` being in queue order."""
    waiting = (r for r in queue if r.status == RegistrationStatus.WAITLISTED)
    return {registration.id: place for place, registration in enumerate(waiting, start=1)}


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


def start_of_day_paris(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=PARIS)


# --- Identity and signed links ---------------------------------------------------------------

#: Mail providers known to ignore dots in the local part (`c.laire@gmail.com` is
#: `claire@gmail.com`); `googlemail.com` is the same mailbox as `gmail.com`.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def normalise_email(email: str) -> str:
    """The person behind an address, for the one-registration-per-person rule (and invitations):
    lower case; without a `+tag` (sub-addressing, which Gmail, Outlook, Fastmail, Proton, iCloud
    and most hosts deliver to the same mailbox); for Gmail without the dots of the local part.
    Only ever compared, never written to: e-mails go to the address as typed."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    domain = domain.rstrip(".")
    if domain in DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"


def email_digest(email: str) -> str:
    """What identifies a person in the store: a hash of the normalised address, so that the
    same person cannot register twice, nor be invited twice, under variants of one mailbox."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


# --- Text that people and organisers send, and that reaches e-mails --------------------------

NAME_MAX_LENGTH = 80
_NAME_PUNCTUATION = frozenset(" '\u2019-.")  # the typewriter and the typographic apostrophe
#: Characters that move or hide text (bidirectional overrides and isolates).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def one_line_problem(text: str) -> str | None:
    """Why `text` may not go in an e-mail header or a one-line field: a control character (a
    newline ends a header and starts another), a line or paragraph separator, or a
    bidirectional override (it reorders what the reader sees). None when it may."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS:
            return "control_characters"
    return None


def name_problem(name: str) -> str | None:
    """Why `name` is not a person's name as this service accepts one; None when it is.

    The name goes, as typed, into e-mails the notifier sends to the address given, which anyone
    may type: so it holds letters (any script), spaces, apostrophes, hyphens and the dots of
    initials ("J.-P. Martin") and nothing else: no digits, `@`, `:` or `/`, so no link, address
    or phone number can be mailed to a stranger under our name; a dot directly followed by a
    letter ("exemple.fr") is refused for the same reason.
    """
    if not name or len(name) > NAME_MAX_LENGTH:
        return "name_length"
    if one_line_problem(name) is not None:
        return "control_characters"
    if not any(char.isalpha() for char in name):
        return "name_characters"
    for index, char in enumerate(name):
        if not (char.isalpha() or char in _NAME_PUNCTUATION):
            return "name_characters"
        if char == "." and index + 1 < len(name) and name[index + 1].isalpha():
            return "name_characters"
    return None


def tidy_name(name: str) -> str:
    """A name as kept: NFC (an accent typed as a combining mark becomes one letter) and single
    spaces, trimmed."""
    return " ".join(unicodedata.normalize("NFC", name).split())


# --- Cancellation links --------------------------------------------------------------------

#: A link older than this is refused whatever its conference (an upper bound for every link;
#: each expires sooner, when its conference ends).
CANCEL_LINK_MAX_AGE = timedelta(days=400)


class InvalidLink(Exception):
    """Not a cancellation token this service signed for that registration."""


class CancelLinks:
    """Signs and reads the tokens of cancellation links (itsdangerous, salted and timed).

    A token carries the registration id and its `generation` (when it was last queued: a person
    who cancels and registers again gets a new one), signed with EVENTS_SIGNING_SECRET under a
    salt of its own, so no other signature of this service can pass for one. It is valid for
    that registration only, for that generation only, and (checked by the caller against the
    store) until its conference ends. Tokens signed before this scheme (a bare HMAC of the id)
    are still read, for links already in people's mailboxes; they too expire with their
    conference.
    """

    SALT = "rebond-events/cancel-registration"

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._serializer = URLSafeTimedSerializer(secret, salt=self.SALT)

    def token(self, registration_id: str, generation: str) -> str:
        return str(self._serializer.dumps([registration_id, generation]))

    def generation(self, registration_id: str, token: str) -> str | None:
        """The generation `token` was signed for (None for a token of the earlier scheme);
        `InvalidLink` when it is not a valid token for `registration_id`."""
        if not token.isascii():
            raise InvalidLink("not a token")
        try:
            signed = self._serializer.loads(token, max_age=int(CANCEL_LINK_MAX_AGE.total_seconds()))
        except BadData:
            if hmac.compare_digest(_legacy_token(self._secret, registration_id), token):
                return None
            raise InvalidLink("bad signature") from None
        if (
            not isinstance(signed, list)
            or len(signed) != 2
            or signed[0] != registration_id
            or not isinstance(signed[1], str)
        ):
            raise InvalidLink("another registration")
        return signed[1]


def _legacy_token(secret: str, registration_id: str) -> str:
    """The earlier scheme: an HMAC of the id, without salt, time or generation."""
    mac = hmac.new(secret.encode(), f"cancel:{registration_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


#: A repeat registration re-sends the cancellation link at most this often: a stranger
#: registering someone's address again and again sends them one e-mail, not a flood.
RESEND_AFTER = timedelta(minutes=10)


def may_resend(link_sent_at: datetime | None, now: datetime) -> bool:
    """Whether a repeat registration may e-mail the link again (it was sent long enough ago,
    or never recorded)."""
    return link_sent_at is None or now - link_sent_at >= RESEND_AFTER
