"""What the events service publishes, as outbox messages: a conference's changes, each step of a
registration (one e-mail each, by the notifier), invitations. Pure: the caller gives the time.

Records of one conference are keyed (and subjected) by its id, so they stay in order on one
partition and one flush publishes them together; an invitation is keyed by the person's
submission reference, so an erasure finds (and drops) it by that subject.
"""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from rebond_contracts.payloads import (
    ConferenceChange,
    ConferenceSummaryV1,
    ConferenceV1,
    InvitationContactV1,
    InvitationV1,
    RegistrationChange,
    RegistrationV1,
)
from rebond_contracts.topics import CONFERENCES, INVITATIONS, REGISTRATIONS, Topic
from rebond_events.domain import CancelLinks, Conference, Registration, to_paris
from rebond_sql.outbox import Message

#: Invitation ids are derived from the conference and the person: a redelivered invitee gives
#: the same id (and the store refuses a second invitation).
INVITATION_NAMESPACE = uuid.UUID("5d0c6f43-3f9e-4d38-9a53-8c2e0f7f1a21")


class Links:
    """Where people reach this service: a conference's page and `.ics`, and the signed
    cancellation link of a registration."""

    def __init__(self, public_base_url: str, signing_secret: str) -> None:
        self.base = public_base_url.rstrip("/")
        self.cancel_links = CancelLinks(signing_secret)

    def page(self, event_id: str) -> str:
        return f"{self.base}/evenements/{event_id}"

    def ics(self, event_id: str) -> str:
        return f"{self.base}/v1/events/{event_id}/calendar.ics"

    def cancel(self, registration: Registration) -> str:
        """The link the person gets by e-mail, and only by e-mail (the notifier's). The token
        is in the query because an e-mailed link can carry it nowhere else; the page it opens
        sends it on in a form's body, and `Referrer-Policy: no-referrer` keeps it from leaking
        to any site the page links to."""
        token = self.cancel_links.token(registration.id, registration.generation)
        return f"{self.base}/inscriptions/{registration.id}/annuler?token={token}"


def invitation_id(event_id: str, email_digest: str) -> str:
    return str(uuid.uuid5(INVITATION_NAMESPACE, f"{event_id}:{email_digest}"))


class Announcer:
    """Builds the messages announcing what a use case did."""

    def __init__(self, links: Links) -> None:
        self.links = links

    def conference(
        self, conference: Conference, change: ConferenceChange, now: datetime
    ) -> Message:
        """A change of `conference`: what its summary says, and what only organisers change."""
        details = conference.details
        payload = ConferenceV1(
            **self.summary(conference).model_dump(exclude={"cancelled"}), change=change,
            version=conference.version, organiser=conference.organiser,
            description=details.description, capacity=details.capacity, at=now,
        )  # fmt: skip
        return outbox_message(
            CONFERENCES, payload, subject=conference.id, correlation_id=conference.id
        )

    def registration(
        self,
        conference: Conference,
        registration: Registration,
        change: RegistrationChange,
        now: datetime,
        *,
        position: int | None = None,
        by: Literal["person", "organiser"] | None = None,
    ) -> Message:
        """One step of `registration` (an e-mail to the person): an active one carries its
        cancellation link; `position` is its place on the waitlist, if it waits."""
        payload = RegistrationV1(
            registration_id=uuid.UUID(registration.id), event_id=uuid.UUID(conference.id),
            change=change, cancelled_by=by, name=registration.name, email=registration.email,
            locale=registration.locale,
            cancel_url=self.links.cancel(registration) if registration.active else None,
            waitlist_position=position, conference=self.summary(conference), at=now,
        )  # fmt: skip
        return outbox_message(
            REGISTRATIONS, payload, subject=conference.id, correlation_id=registration.id
        )

    def invitation(
        self,
        conference: Conference,
        invitation: str,
        reference: str,
        correlation_id: str,
        contact: InvitationContactV1,
        match: Literal["department", "region"],
        now: datetime,
    ) -> Message:
        payload = InvitationV1(
            invitation_id=uuid.UUID(invitation), reference=reference,
            first_name=contact.first_name, email=contact.email, locale=contact.locale,
            match=match, conference=self.summary(conference), invited_at=now,
        )  # fmt: skip
        return outbox_message(
            INVITATIONS, payload, subject=reference, correlation_id=correlation_id,
            event_id=invitation,
        )  # fmt: skip

    def summary(self, conference: Conference) -> ConferenceSummaryV1:
        details = conference.details
        return ConferenceSummaryV1(
            event_id=uuid.UUID(conference.id), title=details.title, kind=details.kind,
            starts_at=to_paris(details.starts_at), ends_at=to_paris(details.ends_at),
            venue_address=details.venue_address, city=details.city,
            department=details.department, region=details.region,
            online_url=details.online_url, cancelled=conference.cancelled,
            page_url=self.links.page(conference.id), ics_url=self.links.ics(conference.id),
        )  # fmt: skip


def outbox_message(
    topic: Topic,
    payload: BaseModel,
    *,
    subject: str,
    correlation_id: str,
    event_id: str | None = None,
) -> Message:
    """`payload` as a record of `topic` keyed by `subject`, under a new event id unless given."""
    envelope = topic.envelope(
        payload, subject=subject, correlationid=correlation_id, id=event_id or str(uuid.uuid4())
    )
    return Message(
        topic=topic.name, key=subject, value=envelope.kafka_value(),
        headers=envelope.kafka_headers(), subject=subject,
    )  # fmt: skip
