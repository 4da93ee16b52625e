"""What the use cases need from the outside, and what they give back.

A use case is a plain function of a `Repository` (one transaction's view of the store) and of a
clock (read once, after the locks it takes: times then follow the order of the transactions):
it reads, decides with `domain`, saves, and returns an `Outcome`, the messages announcing what
it did included; whoever runs it writes those to the outbox in the same
transaction (`store.Store.apply`). Tests run the same functions on a fake repository.
"""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from rebond_contracts.payloads import ConferenceKind
from rebond_contracts.tracing import HEADER as TRACE_HEADER
from rebond_events.domain import Conference, Counts, Registration, RegistrationStatus
from rebond_sql.outbox import Message

T = TypeVar("T", covariant=True)
V = TypeVar("V")


def random_id() -> str:
    """A new conference's, registration's, story's, volunteer's or match's id (a random UUID);
    tests give their own `new_id`."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What a use case returns to its caller, and the messages announcing it."""

    value: T
    messages: Sequence[Message] = ()

    @property
    def subjects(self) -> list[str]:
        """The subjects to publish once the transaction committed (each once, in order)."""
        return list(dict.fromkeys(message.subject for message in self.messages))

    def traced(self, trace: str | None) -> "Outcome[T]":
        """Its messages carrying `trace` (a `traceparent`), when given: those of a record of a
        batch, published after the batch's transaction outside that record's span, stay in its
        trace, as a record handled alone publishes in its own."""
        if trace is None:
            return self
        messages = [replace(m, headers={**m.headers, TRACE_HEADER: trace}) for m in self.messages]
        return Outcome(self.value, messages)


def each(outcomes: Sequence[Outcome[V]]) -> Outcome[list[V]]:
    """The outcomes of a batch's use cases, run one after the other in one transaction: their
    values in order, and all their messages (for one outbox write)."""
    return Outcome([o.value for o in outcomes], [m for o in outcomes for m in o.messages])


@dataclass(frozen=True)
class Listing:
    """Which scheduled conferences the public listing shows: starting from `since`, soonest
    first, filtered, one page of them."""

    since: datetime
    region: str | None = None
    department: str | None = None
    kind: ConferenceKind | None = None
    page: int = 1
    per_page: int = 20


@dataclass(frozen=True)
class Invitation:
    """A person invited to a conference: a digest of their address, not the address."""

    id: str
    event_id: str
    email_digest: str
    reference: str
    created_at: datetime


class Repository(Protocol):
    """The events store as the use cases see it, inside one transaction.

    `conference(…, lock=True)` is what makes seat counting hold under concurrency: every use
    case that counts seats or changes registrations first takes its conference that way, and
    no two such transactions of one conference overlap (`repository.SqlRepository` says how).
    """

    # --- conferences --------------------------------------------------------------------------

    def conference(self, event_id: str, *, lock: bool = False) -> Conference | None: ...

    def add_conference(self, conference: Conference) -> None: ...

    def save_conference(self, conference: Conference) -> None: ...

    def counts(self, event_ids: Sequence[str]) -> dict[str, Counts]:
        """Confirmed and waitlisted registrations per conference (absent: none)."""
        ...

    def listing(self, query: Listing) -> tuple[int, list[Conference]]:
        """How many conferences `query` matches, and its page of them."""
        ...

    def upcoming(self, region: str, after: datetime, limit: int) -> list[Conference]:
        """Scheduled conferences of `region` starting after `after`, soonest first."""
        ...

    def starting_between(self, start: datetime, end: datetime) -> list[Conference]:
        """Scheduled conferences starting after `start` and by `end`, soonest first."""
        ...

    # --- registrations ------------------------------------------------------------------------

    def registration(self, registration_id: str) -> Registration | None: ...

    def registration_of(self, event_id: str, email_digest: str) -> Registration | None:
        """The registration of the person `email_digest` to the conference, if any."""
        ...

    def queue(
        self, event_id: str, statuses: Collection[RegistrationStatus] | None = None
    ) -> list[Registration]:
        """The conference's registrations (of `statuses` only, if given) in queue order: by
        `queued_at`, ties by insertion order."""
        ...

    def waitlist_position(self, registration: Registration) -> int:
        """The place (from 1) of a waitlisted `registration` on its conference's waitlist."""
        ...

    def add_registration(self, registration: Registration) -> Registration:
        """Store a new registration; it comes back with its insertion order (`seq`)."""
        ...

    def save_registration(self, registration: Registration) -> None: ...

    # --- invitations --------------------------------------------------------------------------

    def erased(self, reference: str) -> bool:
        """Whether the person of `reference` asked for erasure; an erasure under way is waited
        for (`rebond_sql.erasure.lock_references`), so what it removes is never re-made."""
        ...

    def known(self, event_id: str, email_digest: str) -> bool:
        """Whether the person was invited to, or registered for, the conference already."""
        ...

    def add_invitation(self, invitation: Invitation) -> None: ...
