"""Use cases of people: registering for a conference, and cancelling through the e-mailed link;
and the waitlist's promotion, which cancelling and a larger room both cause.

Seats are counted after the conference is taken with `lock=True`, so two registrations of one
conference never both count the same free seat (`repository.SqlRepository` says why); the clock
is read only then, so the queue's order (`queued_at`) is the order in which they took it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rebond_contracts.payloads import RegistrationChange
from rebond_events.announcements import Announcer
from rebond_events.domain import (
    Arrival,
    Conference,
    Counts,
    InvalidLink,
    Registration,
    RegistrationStatus,
    arrival,
    email_digest,
    status_for_newcomer,
    to_promote,
    told,
)
from rebond_events.errors import Conflict, Expired, Forbidden, NotFound
from rebond_events.models import CancelResult, RegistrationIn
from rebond_events.ports import Outcome, Repository, random_id
from rebond_sql.outbox import Message
from rebond_sql.types import Clock


@dataclass(frozen=True)
class Registered:
    """What a registration did, for the service's own use and its tests; the person's HTTP
    reply says none of it (it would tell a stranger whether an address was registered)."""

    registration_id: str
    status: RegistrationStatus
    #: A new registration (or one registered again after a cancellation).
    created: bool
    #: Whether an e-mail with the cancellation link was asked for (a repeat registration
    #: re-sends it at most every `domain.RESEND_AFTER`).
    mailed: bool


def register(
    repository: Repository,
    announce: Announcer,
    clock: Clock,
    event_id: str,
    data: RegistrationIn,
    new_id: Callable[[], str] = random_id,
) -> Outcome[Registered]:
    """Register: a seat while one is free, else the waitlist; a person already registered
    (their address or a variant of it, `domain.email_digest`) is e-mailed their link again at
    the address they registered (`domain.arrival`)."""
    conference = repository.conference(event_id, lock=True)
    if conference is None:
        raise NotFound(event_id)
    now = clock()  # once the conference is locked: the queue's order is the locks' order
    if (refusal := conference.refuses_registration(now)) is not None:
        raise Conflict(refusal.value)
    digest = email_digest(str(data.email))
    existing = repository.registration_of(event_id, digest)
    what = arrival(existing, now)
    if existing is not None and what == Arrival.QUIET:
        return Outcome(Registered(existing.id, existing.status, created=False, mailed=False))
    if existing is not None and what == Arrival.REMIND:
        registration = existing.mailed(now)
        repository.save_registration(registration)
        message = _told(repository, announce, conference, registration, now)
        return Outcome(Registered(existing.id, existing.status, False, True), [message])
    counts = repository.counts([event_id]).get(event_id, Counts())
    status = status_for_newcomer(conference.details.capacity, counts.confirmed)
    if existing is None:
        registration = repository.add_registration(
            Registration(
                id=new_id(), event_id=event_id, name=data.name, email=str(data.email),
                email_digest=digest, consent=data.consent, locale=data.locale.value,
                status=status, queued_at=now, created_at=now, updated_at=now,
                link_sent_at=now,
            )
        )  # fmt: skip
    else:  # registering again after cancelling: back in, at the end of the queue
        registration = existing.requeued(
            data.name, str(data.email), data.consent, data.locale.value, status, now
        ).mailed(now)
        repository.save_registration(registration)
    message = _told(repository, announce, conference, registration, now)
    return Outcome(Registered(registration.id, status, created=True, mailed=True), [message])


def cancel(
    repository: Repository,
    announce: Announcer,
    clock: Clock,
    registration_id: str,
    token: str,
) -> Outcome[CancelResult]:
    """Cancel through a signed link; a freed seat goes to the first waitlisted person.

    `Forbidden` for a token not signed for this registration; `Expired` once its conference
    has ended, or for a link of an earlier registration of the same person (cancelled, then
    registered again: only the newer link counts). Cancelling again changes nothing.
    """
    try:
        generation = announce.links.cancel_links.generation(registration_id, token)
    except InvalidLink as error:
        raise Forbidden("invalid cancellation link") from error
    found = repository.registration(registration_id)
    if found is None:
        raise NotFound(registration_id)
    conference = repository.conference(found.event_id, lock=True)
    registration = repository.registration(registration_id)  # as it is once the lock is held
    assert conference is not None and registration is not None  # neither is ever deleted
    now = clock()
    if conference.ended(now):
        raise Expired("the conference has ended")
    if generation is not None and generation != registration.generation:
        raise Expired("a link of an earlier registration")
    if not registration.active:
        return Outcome(
            CancelResult(registration_id=registration_id, status="cancelled", promoted=0)
        )
    registration = registration.with_status(RegistrationStatus.CANCELLED, now)
    repository.save_registration(registration)
    told_ = announce.registration(
        conference, registration, RegistrationChange.CANCELLED, now, by="person"
    )
    promoted = [] if conference.cancelled else promote(repository, announce, now, conference)
    result = CancelResult(
        registration_id=registration_id, status="cancelled", promoted=len(promoted)
    )
    return Outcome(result, [told_, *promoted])


def promote(
    repository: Repository, announce: Announcer, now: datetime, conference: Conference
) -> list[Message]:
    """Give the free seats of `conference` (taken with `lock=True`) to the waitlist, first come
    first served; one message per person promoted."""
    waitlist = repository.queue(conference.id, [RegistrationStatus.WAITLISTED])
    counts = repository.counts([conference.id]).get(conference.id, Counts())
    chosen = set(
        to_promote(conference.details.capacity, counts.confirmed, [r.id for r in waitlist])
    )
    messages = []
    for registration in waitlist:
        if registration.id in chosen:
            registration = registration.with_status(RegistrationStatus.CONFIRMED, now).mailed(now)
            repository.save_registration(registration)
            messages.append(
                announce.registration(conference, registration, RegistrationChange.PROMOTED, now)
            )
    return messages


def _told(
    repository: Repository,
    announce: Announcer,
    conference: Conference,
    registration: Registration,
    now: datetime,
) -> Message:
    """The e-mail telling a person registering where they stand: a seat, or their place."""
    waiting = registration.status == RegistrationStatus.WAITLISTED
    return announce.registration(
        conference, registration, told(registration.status), now,
        position=repository.waitlist_position(registration) if waiting else None,
    )  # fmt: skip


#: How long before a conference its confirmed registrants are reminded of it.
REMINDER_LEAD = timedelta(days=2)


def remind(
    repository: Repository, announce: Announcer, clock: Clock, lead: timedelta = REMINDER_LEAD
) -> Outcome[int]:
    """Remind each confirmed registrant of a conference starting within `lead`, once (the
    registration keeps `reminded_at`): the e-mail carries the cancellation link, so a person
    who cannot come frees their seat for the waitlist. Each conference is taken with
    `lock=True`, as every change of its registrations is, so a cancellation or a promotion
    meanwhile is seen. Nobody is reminded who was sent the conference and its link within
    `lead` of its start already (registered or promoted from the waitlist in those days): a
    reminder right after their confirmation would tell them nothing new. Returns how many
    reminders were asked for."""
    now = clock()
    messages: list[Message] = []
    for found in repository.starting_between(now, now + lead):
        conference = repository.conference(found.id, lock=True)
        if conference is None or conference.cancelled:
            continue
        window_opened = conference.details.starts_at - lead
        for registration in repository.queue(conference.id, [RegistrationStatus.CONFIRMED]):
            if registration.reminded_at is not None:
                continue
            if registration.link_sent_at is not None and registration.link_sent_at >= window_opened:
                continue
            registration = registration.reminded(now)
            repository.save_registration(registration)
            messages.append(
                announce.registration(conference, registration, RegistrationChange.REMINDER, now)
            )
    return Outcome(len(messages), messages)
