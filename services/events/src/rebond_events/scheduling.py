"""Use cases of organisers and of the public listing: scheduling, changing and cancelling a
conference, the organiser's list of registrations, a conference and the listing as shown.

Each is a plain function of a `Repository` and of a clock (`ports` says how they run).
"""

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from rebond_contracts.payloads import ConferenceChange, RegistrationChange
from rebond_events.announcements import Announcer, Links
from rebond_events.domain import (
    Conference,
    Counts,
    Details,
    EventStatus,
    RegistrationStatus,
    seats_left,
    to_paris,
    waitlist_positions,
)
from rebond_events.errors import Conflict, Forbidden, InvalidChange, NotFound
from rebond_events.models import (
    EventIn,
    EventPage,
    EventPatch,
    EventPublic,
    RegistrationForOrganiser,
)
from rebond_events.ports import Listing, Outcome, Repository, random_id
from rebond_events.registering import promote
from rebond_sql.types import Clock


def schedule(
    repository: Repository,
    announce: Announcer,
    clock: Clock,
    organiser: str,
    data: EventIn,
    new_id: Callable[[], str] = random_id,
) -> Outcome[EventPublic]:
    """A new conference of `organiser`, announced (`scheduled`)."""
    now = clock()
    conference = Conference(
        id=new_id(), organiser=organiser, details=details_of(data),
        status=EventStatus.SCHEDULED, version=1, created_at=now, updated_at=now,
    )  # fmt: skip
    repository.add_conference(conference)
    message = announce.conference(conference, ConferenceChange.SCHEDULED, now)
    return Outcome(public(conference, Counts(), announce.links), [message])


def change(
    repository: Repository,
    announce: Announcer,
    clock: Clock,
    organiser: str,
    event_id: str,
    patch: EventPatch,
) -> Outcome[EventPublic]:
    """Change a conference (checked whole, as when scheduled): it is announced, each active
    registrant is told, and a larger room gives its new seats to the waitlist."""
    conference = own(repository, organiser, event_id)
    now = clock()
    if conference.cancelled:
        raise Conflict("the conference is cancelled")
    try:
        merged = EventIn.model_validate({**fields_of(conference.details), **patch.changes()})
    except ValidationError as error:
        raise InvalidChange([dict(e) for e in error.errors(include_url=False)]) from error
    conference = conference.changed(details_of(merged), now)
    repository.save_conference(conference)
    messages = [announce.conference(conference, ConferenceChange.UPDATED, now)]
    active = [r for r in repository.queue(event_id) if r.active]
    positions = waitlist_positions(active)
    for registration in active:
        registration = registration.mailed(now)
        repository.save_registration(registration)
        messages.append(
            announce.registration(
                conference, registration, RegistrationChange.EVENT_UPDATED, now,
                position=positions.get(registration.id),
            )
        )  # fmt: skip
    messages += promote(repository, announce, now, conference)
    return Outcome(public(conference, _counts(repository, event_id), announce.links), messages)


def cancel(
    repository: Repository, announce: Announcer, clock: Clock, organiser: str, event_id: str
) -> Outcome[EventPublic]:
    """Cancel a conference: every active registration is cancelled and its person told. Once
    cancelled, cancelling again changes and announces nothing."""
    conference = own(repository, organiser, event_id)
    now = clock()
    if conference.cancelled:
        return Outcome(public(conference, _counts(repository, event_id), announce.links))
    conference = conference.cancel(now)
    repository.save_conference(conference)
    messages = [announce.conference(conference, ConferenceChange.CANCELLED, now)]
    for registration in repository.queue(event_id):
        if registration.active:
            registration = registration.with_status(RegistrationStatus.CANCELLED, now)
            repository.save_registration(registration)
            messages.append(
                announce.registration(
                    conference, registration, RegistrationChange.CANCELLED, now, by="organiser"
                )
            )
    return Outcome(public(conference, Counts(), announce.links), messages)


def registrations_of(
    repository: Repository, organiser: str, event_id: str
) -> list[RegistrationForOrganiser]:
    """The organiser's list: every registration, in queue order, the waitlisted numbered."""
    own(repository, organiser, event_id, lock=False)
    queue = repository.queue(event_id)
    positions = waitlist_positions(queue)
    return [
        RegistrationForOrganiser(
            registration_id=r.id, name=r.name, email=r.email, status=r.status,
            waitlist_position=positions.get(r.id), registered_at=to_paris(r.created_at),
        )
        for r in queue
    ]  # fmt: skip


def shown(repository: Repository, links: Links, event_id: str) -> EventPublic:
    """A conference as anyone sees it."""
    conference = repository.conference(event_id)
    if conference is None:
        raise NotFound(event_id)
    return public(conference, _counts(repository, event_id), links)


def listing(repository: Repository, links: Links, query: Listing) -> EventPage:
    """The public listing: scheduled conferences from `query.since`, soonest first."""
    total, found = repository.listing(query)
    counts = repository.counts([conference.id for conference in found])
    return EventPage(
        items=[public(c, counts.get(c.id, Counts()), links) for c in found],
        page=query.page, per_page=query.per_page, total=total,
    )  # fmt: skip


def own(repository: Repository, organiser: str, event_id: str, *, lock: bool = True) -> Conference:
    """The conference, if it is `organiser`'s (`Forbidden` otherwise), locked unless `lock`
    is false."""
    conference = repository.conference(event_id, lock=lock)
    if conference is None:
        raise NotFound(event_id)
    if conference.organiser != organiser:
        raise Forbidden("another organiser's conference")
    return conference


def public(conference: Conference, counts: Counts, links: Links) -> EventPublic:
    """A conference as the API shows it: Paris times, seats and links."""
    return EventPublic(
        id=conference.id, organiser=conference.organiser, **fields_of(conference.details),
        status=conference.status, version=conference.version,
        seats_left=seats_left(conference.details.capacity, counts.confirmed),
        confirmed=counts.confirmed, waitlisted=counts.waitlisted,
        page_url=links.page(conference.id), ics_url=links.ics(conference.id),
    )  # fmt: skip


def details_of(data: EventIn) -> Details:
    return Details(
        title=data.title, description=data.description, kind=data.kind,
        starts_at=data.starts_at, ends_at=data.ends_at, venue_address=data.venue_address,
        city=data.city, region=data.region, department=data.department,
        online_url=str(data.online_url) if data.online_url is not None else None,
        capacity=data.capacity,
    )  # fmt: skip


def fields_of(details: Details) -> dict[str, Any]:
    """`details` as `EventIn`'s fields, times in Paris."""
    return {
        "title": details.title, "description": details.description, "kind": details.kind,
        "starts_at": to_paris(details.starts_at), "ends_at": to_paris(details.ends_at),
        "venue_address": details.venue_address, "city": details.city,
        "region": details.region, "department": details.department,
        "online_url": details.online_url, "capacity": details.capacity,
    }  # fmt: skip


def _counts(repository: Repository, event_id: str) -> Counts:
    return repository.counts([event_id]).get(event_id, Counts())
