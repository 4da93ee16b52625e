"""A fake of the events store's port, in memory: `ports.Repository` as `test_store.py` checks
it against SQLite and PostgreSQL, for the use cases' table tests; and a clock that stands
still."""

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime

from rebond_events.domain import Conference, Counts, EventStatus, Registration, RegistrationStatus
from rebond_events.ports import Invitation, Listing


class FrozenClock:
    """The time the use cases read (`rebond_sql.types.Clock`): `now`, until a test sets it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Duplicate(Exception):
    """What the store's unique constraints refuse."""


class FakeRepository:
    """`ports.Repository` in memory: one transaction at a time, so `lock` takes nothing."""

    def __init__(self) -> None:
        self.conferences: dict[str, Conference] = {}
        self.registrations: dict[str, Registration] = {}
        self.invitations: dict[str, Invitation] = {}
        self.erasures: set[str] = set()

    # --- conferences --------------------------------------------------------------------------

    def conference(self, event_id: str, *, lock: bool = False) -> Conference | None:
        return self.conferences.get(event_id)

    def add_conference(self, conference: Conference) -> None:
        if conference.id in self.conferences:
            raise Duplicate(conference.id)
        self.conferences[conference.id] = conference

    def save_conference(self, conference: Conference) -> None:
        self.conferences[conference.id] = conference

    def counts(self, event_ids: Sequence[str]) -> dict[str, Counts]:
        found: dict[str, Counts] = {}
        for r in self.registrations.values():
            if r.event_id in event_ids:
                counts = found.get(r.event_id, Counts())
                found[r.event_id] = Counts(
                    counts.confirmed + (r.status == RegistrationStatus.CONFIRMED),
                    counts.waitlisted + (r.status == RegistrationStatus.WAITLISTED),
                )
        return found

    def listing(self, query: Listing) -> tuple[int, list[Conference]]:
        matching = sorted(
            (
                c for c in self.conferences.values()
                if c.status == EventStatus.SCHEDULED and c.details.starts_at >= query.since
                and query.region in (None, c.details.region)
                and query.department in (None, c.details.department)
                and query.kind in (None, c.details.kind)
            ),
            key=lambda c: (c.details.starts_at, c.id),
        )  # fmt: skip
        start = (query.page - 1) * query.per_page
        return len(matching), matching[start : start + query.per_page]

    def upcoming(self, region: str, after: datetime, limit: int) -> list[Conference]:
        found = [
            c for c in self.conferences.values()
            if c.status == EventStatus.SCHEDULED and c.details.region == region
            and c.details.starts_at > after
        ]  # fmt: skip
        return sorted(found, key=lambda c: c.details.starts_at)[:limit]

    def starting_between(self, start: datetime, end: datetime) -> list[Conference]:
        found = [
            c for c in self.conferences.values()
            if c.status == EventStatus.SCHEDULED and start < c.details.starts_at <= end
        ]  # fmt: skip
        return sorted(found, key=lambda c: c.details.starts_at)

    # --- registrations ------------------------------------------------------------------------

    def registration(self, registration_id: str) -> Registration | None:
        return self.registrations.get(registration_id)

    def registration_of(self, event_id: str, email_digest: str) -> Registration | None:
        return next(
            (
                r for r in self.registrations.values()
                if r.event_id == event_id and r.email_digest == email_digest
            ),
            None,
        )  # fmt: skip

    def queue(
        self, event_id: str, statuses: Collection[RegistrationStatus] | None = None
    ) -> list[Registration]:
        found = [
            r for r in self.registrations.values()
            if r.event_id == event_id and (statuses is None or r.status in statuses)
        ]  # fmt: skip
        return sorted(found, key=lambda r: (r.queued_at, r.seq or 0))

    def waitlist_position(self, registration: Registration) -> int:
        waitlist = self.queue(registration.event_id, [RegistrationStatus.WAITLISTED])
        ahead = [r for r in waitlist if (r.queued_at, r.seq or 0) < (
            registration.queued_at, registration.seq or 0
        )]  # fmt: skip
        return len(ahead) + 1

    def add_registration(self, registration: Registration) -> Registration:
        if registration.id in self.registrations or self.registration_of(
            registration.event_id, registration.email_digest
        ):
            raise Duplicate(registration.id)
        stored = replace(registration, seq=len(self.registrations) + 1)
        self.registrations[stored.id] = stored
        return stored

    def save_registration(self, registration: Registration) -> None:
        self.registrations[registration.id] = registration

    # --- invitations --------------------------------------------------------------------------

    def erased(self, reference: str) -> bool:
        return reference in self.erasures

    def known(self, event_id: str, email_digest: str) -> bool:
        return (
            any(
                i.event_id == event_id and i.email_digest == email_digest
                for i in self.invitations.values()
            )
            or self.registration_of(event_id, email_digest) is not None
        )

    def add_invitation(self, invitation: Invitation) -> None:
        if invitation.id in self.invitations or any(
            (i.event_id, i.email_digest) == (invitation.event_id, invitation.email_digest)
            for i in self.invitations.values()
        ):
            raise Duplicate(invitation.id)
        self.invitations[invitation.id] = invitation
