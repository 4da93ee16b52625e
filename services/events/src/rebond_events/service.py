"""Use cases of the Conférences du rebond, each one database transaction.

Every change writes the events that announce it to the outbox in the same transaction; the
relay (`outbox.py`) publishes them to Kafka afterwards. So a change is never announced without
being stored, nor stored without being announced (at least once, with a stable event id).
Blocking (SQLAlchemy is synchronous): the HTTP layer runs these in a thread pool.
"""

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rebond_contracts.payloads import (
    ConferenceChange,
    ConferenceKind,
    ConferenceSummaryV1,
    ConferenceV1,
    InvitationContactV1,
    InvitationV1,
    RegistrationChange,
    RegistrationV1,
)
from rebond_contracts.topics import CONFERENCES, INVITATIONS, REGISTRATIONS, Topic
from rebond_events.domain import (
    CancelLinks,
    Candidate,
    EventStatus,
    InvalidLink,
    RegistrationStatus,
    choose_invitation,
    email_digest,
    from_utc_naive,
    may_resend,
    seats_left,
    start_of_day_paris,
    status_for_newcomer,
    to_promote,
    to_utc_naive,
)
from rebond_events.models import (
    CancelResult,
    EventIn,
    EventPage,
    EventPatch,
    EventPublic,
    RegistrationForOrganiser,
    RegistrationIn,
)
from rebond_events.privacy import erased
from rebond_events.store import EventRow, InvitationRow, OutboxRow, RegistrationRow

INVITATION_NAMESPACE = uuid.UUID("5d0c6f43-3f9e-4d38-9a53-8c2e0f7f1a21")


class NotFound(Exception):
    """No such conference or registration."""


class Forbidden(Exception):
    """The conference belongs to another organiser, or a cancellation link is not valid."""


class Conflict(Exception):
    """The conference is cancelled or already started."""


class Expired(Exception):
    """A cancellation link whose conference has ended, or of an earlier registration."""


class InvalidChange(Exception):
    """An update that would leave the conference invalid; `errors` name the fields."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("invalid change")
        self.errors = errors


@dataclass(frozen=True)
class Counts:
    confirmed: int = 0
    waitlisted: int = 0


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


@dataclass(frozen=True)
class Outbound:
    """One unsent event of the outbox."""

    seq: int
    event_id: str
    topic: str
    key: bytes
    value: bytes
    headers: dict[str, str]
    correlation_id: str


def _now() -> datetime:
    return datetime.now(UTC)


class Conferences:
    def __init__(
        self,
        engine: Engine,
        *,
        signing_secret: str,
        public_base_url: str,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.engine = engine
        self._links = CancelLinks(signing_secret)
        self._base = public_base_url.rstrip("/")
        self._clock = clock

    # --- links -------------------------------------------------------------------------------

    def page_url(self, event_id: str) -> str:
        return f"{self._base}/evenements/{event_id}"

    def ics_url(self, event_id: str) -> str:
        return f"{self._base}/v1/events/{event_id}/calendar.ics"

    def cancel_url(self, registration: RegistrationRow) -> str:
        """The link the person gets by e-mail, and only by e-mail (the notifier's). The token
        is in the query because an e-mailed link can carry it nowhere else; the page it opens
        sends it on in a form's body, and `Referrer-Policy: no-referrer` keeps it from leaking
        to any site the page links to."""
        token = self._links.token(registration.id, _generation(registration))
        return f"{self._base}/inscriptions/{registration.id}/annuler?token={token}"

    # --- organisers --------------------------------------------------------------------------

    def create_event(self, organiser: str, data: EventIn) -> EventPublic:
        now = to_utc_naive(self._clock())
        row = EventRow(
            id=str(uuid.uuid4()),
            organiser=organiser,
            **_columns(data),
            status=EventStatus.SCHEDULED.value,
            version=1,
            created_at=now,
            updated_at=now,
        )
        with self._transaction() as session:
            session.add(row)
            session.flush()
            self._announce_event(session, row, ConferenceChange.SCHEDULED)
            return self._public(row, Counts())

    def update_event(self, organiser: str, event_id: str, patch: EventPatch) -> EventPublic:
        with self._transaction() as session:
            row = self._own_event(session, organiser, event_id)
            if row.status == EventStatus.CANCELLED:
                raise Conflict("the conference is cancelled")
            try:
                merged = EventIn.model_validate({**self._fields(row), **patch.changes()})
            except ValidationError as error:
                raise InvalidChange([dict(e) for e in error.errors(include_url=False)]) from error
            for name, value in _columns(merged).items():
                setattr(row, name, value)
            row.version += 1
            row.updated_at = to_utc_naive(self._clock())
            session.flush()
            self._announce_event(session, row, ConferenceChange.UPDATED)
            for registration in self._active(session, row.id):
                self._announce_registration(
                    session, row, registration, RegistrationChange.EVENT_UPDATED
                )
            self._promote(session, row)
            return self._public(row, self._counts(session, row.id))

    def cancel_event(self, organiser: str, event_id: str) -> EventPublic:
        with self._transaction() as session:
            row = self._own_event(session, organiser, event_id)
            if row.status == EventStatus.CANCELLED:
                return self._public(row, self._counts(session, row.id))
            now = to_utc_naive(self._clock())
            row.status = EventStatus.CANCELLED.value
            row.version += 1
            row.updated_at = now
            session.flush()
            self._announce_event(session, row, ConferenceChange.CANCELLED)
            for registration in self._active(session, row.id):
                registration.status = RegistrationStatus.CANCELLED.value
                registration.updated_at = now
                self._announce_registration(
                    session, row, registration, RegistrationChange.CANCELLED, by="organiser"
                )
            return self._public(row, Counts())

    def registrations_of(self, organiser: str, event_id: str) -> list[RegistrationForOrganiser]:
        with self._transaction() as session:
            self._own_event(session, organiser, event_id, lock=False)
            rows = session.scalars(
                select(RegistrationRow)
                .where(RegistrationRow.event_id == event_id)
                .order_by(RegistrationRow.queued_at, RegistrationRow.seq)
            ).all()
            position = 0
            out = []
            for row in rows:
                waiting = row.status == RegistrationStatus.WAITLISTED
                position += waiting
                out.append(
                    RegistrationForOrganiser(
                        registration_id=row.id,
                        name=row.name,
                        email=row.email,
                        status=row.status,
                        waitlist_position=position if waiting else None,
                        registered_at=from_utc_naive(row.created_at),
                    )
                )
            return out

    # --- public ------------------------------------------------------------------------------

    def get_event(self, event_id: str) -> EventPublic:
        with self._transaction() as session:
            row = session.get(EventRow, event_id)
            if row is None:
                raise NotFound(event_id)
            return self._public(row, self._counts(session, row.id))

    def list_events(
        self,
        *,
        region: str | None = None,
        department: str | None = None,
        from_day: date | None = None,
        kind: ConferenceKind | None = None,
        page: int = 1,
        per_page: int = 20,
    ) -> EventPage:
        """Scheduled conferences starting from `from_day` (default: now), soonest first."""
        since = (
            to_utc_naive(start_of_day_paris(from_day))
            if from_day is not None
            else to_utc_naive(self._clock())
        )
        conditions = [EventRow.status == EventStatus.SCHEDULED.value, EventRow.starts_at >= since]
        if region is not None:
            conditions.append(EventRow.region == region)
        if department is not None:
            conditions.append(EventRow.department == department)
        if kind is not None:
            conditions.append(EventRow.kind == kind.value)
        with self._transaction() as session:
            total = session.scalar(select(func.count()).select_from(EventRow).where(*conditions))
            rows = session.scalars(
                select(EventRow)
                .where(*conditions)
                .order_by(EventRow.starts_at, EventRow.id)
                .offset((page - 1) * per_page)
                .limit(per_page)
            ).all()
            counts = self._counts_of(session, [row.id for row in rows])
            return EventPage(
                items=[self._public(row, counts.get(row.id, Counts())) for row in rows],
                page=page,
                per_page=per_page,
                total=total or 0,
            )

    def register(self, event_id: str, data: RegistrationIn) -> Registered:
        """Register; for a person already registered (`domain.email_digest`: their address or a
        variant of it), e-mail their link again to the address they registered with.

        A repeat registration changes nothing else: not the name, not the address, not the
        place in the queue; the e-mail goes to the registered address, never to the one just
        typed, so typing someone's address sends them their own link and gives the typist
        nothing.
        """
        digest = email_digest(str(data.email))
        with self._transaction() as session:
            event = self._locked_event(session, event_id)
            if event.status == EventStatus.CANCELLED:
                raise Conflict("the conference is cancelled")
            now = self._clock()
            if from_utc_naive(event.starts_at) <= now:
                raise Conflict("the conference has already started")
            existing = session.scalar(
                select(RegistrationRow).where(
                    RegistrationRow.event_id == event_id, RegistrationRow.email_digest == digest
                )
            )
            if existing is not None and existing.status != RegistrationStatus.CANCELLED:
                status = RegistrationStatus(existing.status)
                last = existing.link_sent_at
                if not may_resend(last.replace(tzinfo=UTC) if last else None, now):
                    return Registered(existing.id, status, created=False, mailed=False)
                self._announce_registration(session, event, existing, _told(status))
                return Registered(existing.id, status, created=False, mailed=True)
            counts = self._counts(session, event_id)
            status = status_for_newcomer(event.capacity, counts.confirmed)
            stamp = to_utc_naive(now)
            if existing is None:
                registration = RegistrationRow(
                    id=str(uuid.uuid4()), event_id=event_id, email_digest=digest, created_at=stamp
                )
                session.add(registration)
            else:  # registering again after cancelling: back in, at the end of the queue
                registration = existing
            registration.name = data.name
            registration.email = str(data.email)
            registration.consent = data.consent
            registration.locale = data.locale.value
            registration.status = status.value
            registration.queued_at = stamp
            registration.updated_at = stamp
            session.flush()
            self._announce_registration(session, event, registration, _told(status))
            return Registered(registration.id, status, created=True, mailed=True)

    def cancel_registration(self, registration_id: str, token: str) -> CancelResult:
        """Cancel through a signed link; a freed seat goes to the first waitlisted person.

        `Forbidden` for a token not signed for this registration; `Expired` once its conference
        has ended, or for a link of an earlier registration of the same person (cancelled, then
        registered again: only the newer link counts).
        """
        try:
            generation = self._links.generation(registration_id, token)
        except InvalidLink as error:
            raise Forbidden("invalid cancellation link") from error
        with self._transaction() as session:
            event_id = session.scalar(
                select(RegistrationRow.event_id).where(RegistrationRow.id == registration_id)
            )
            if event_id is None:
                raise NotFound(registration_id)
            event = self._locked_event(session, event_id)
            registration = session.scalars(
                select(RegistrationRow).where(RegistrationRow.id == registration_id)
            ).one()
            if from_utc_naive(event.ends_at) <= self._clock():
                raise Expired("the conference has ended")
            if generation is not None and generation != _generation(registration):
                raise Expired("a link of an earlier registration")
            if registration.status == RegistrationStatus.CANCELLED:
                return CancelResult(registration_id=registration_id, status="cancelled", promoted=0)
            registration.status = RegistrationStatus.CANCELLED.value
            registration.updated_at = to_utc_naive(self._clock())
            session.flush()
            self._announce_registration(
                session, event, registration, RegistrationChange.CANCELLED, by="person"
            )
            promoted = self._promote(session, event) if event.status == EventStatus.SCHEDULED else 0
            return CancelResult(
                registration_id=registration_id, status="cancelled", promoted=promoted
            )

    # --- invitations -------------------------------------------------------------------------

    def invite(self, reference: str, correlation_id: str, contact: InvitationContactV1) -> bool:
        """Invite to the next conference in the department, else the region; at most once;
        never a person who asked for erasure (read in the invitation's own transaction)."""
        now = self._clock()
        digest = email_digest(contact.email)
        try:
            with self._transaction() as session:
                if erased(session, reference):
                    return False
                rows = session.execute(
                    select(EventRow.id, EventRow.starts_at, EventRow.department, EventRow.region)
                    .where(
                        EventRow.status == EventStatus.SCHEDULED.value,
                        EventRow.region == contact.region,
                        EventRow.starts_at > to_utc_naive(now),
                    )
                    .order_by(EventRow.starts_at)
                    .limit(200)
                ).all()
                candidates = [
                    Candidate(r.id, from_utc_naive(r.starts_at), r.department, r.region)
                    for r in rows
                ]
                chosen = choose_invitation(candidates, contact.department, contact.region, now)
                if chosen is None:
                    return False
                candidate, match = chosen
                invited = session.scalar(
                    select(func.count())
                    .select_from(InvitationRow)
                    .where(
                        InvitationRow.event_id == candidate.event_id,
                        InvitationRow.email_digest == digest,
                    )
                )
                registered = session.scalar(
                    select(func.count())
                    .select_from(RegistrationRow)
                    .where(
                        RegistrationRow.event_id == candidate.event_id,
                        RegistrationRow.email_digest == digest,
                    )
                )
                if invited or registered:
                    return False
                event = session.get(EventRow, candidate.event_id)
                assert event is not None
                invitation_id = str(
                    uuid.uuid5(INVITATION_NAMESPACE, f"{candidate.event_id}:{digest}")
                )
                session.add(
                    InvitationRow(
                        id=invitation_id,
                        event_id=candidate.event_id,
                        email_digest=digest,
                        reference=reference,
                        created_at=to_utc_naive(now),
                    )
                )
                payload = InvitationV1(
                    invitation_id=uuid.UUID(invitation_id),
                    reference=reference,
                    first_name=contact.first_name,
                    email=contact.email,
                    locale=contact.locale,
                    match=match,
                    conference=self._summary(event),
                    invited_at=now,
                )
                self._emit(
                    session, INVITATIONS, payload, subject=reference,
                    correlation_id=correlation_id, event_id=invitation_id,
                )  # fmt: skip
                return True
        except IntegrityError:
            return False  # invited concurrently by another worker: once is enough

    # --- outbox ------------------------------------------------------------------------------

    def pending(self, limit: int = 200) -> list[Outbound]:
        with self._transaction() as session:
            rows = session.scalars(
                select(OutboxRow)
                .where(OutboxRow.sent_at.is_(None))
                .order_by(OutboxRow.seq)
                .limit(limit)
            ).all()
            return [
                Outbound(
                    r.seq,
                    r.event_id,
                    r.topic,
                    r.key,
                    r.value,
                    json.loads(r.headers),
                    r.correlation_id,
                )
                for r in rows
            ]

    def mark_sent(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._transaction() as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.seq.in_(seqs))
                .values(sent_at=to_utc_naive(self._clock()))
            )

    # --- internals ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def _locked_event(self, session: Session, event_id: str) -> EventRow:
        row = session.scalars(
            select(EventRow).where(EventRow.id == event_id).with_for_update()
        ).one_or_none()
        if row is None:
            raise NotFound(event_id)
        return row

    def _own_event(
        self, session: Session, organiser: str, event_id: str, *, lock: bool = True
    ) -> EventRow:
        row = self._locked_event(session, event_id) if lock else session.get(EventRow, event_id)
        if row is None:
            raise NotFound(event_id)
        if row.organiser != organiser:
            raise Forbidden("another organiser's conference")
        return row

    def _counts(self, session: Session, event_id: str) -> Counts:
        return self._counts_of(session, [event_id]).get(event_id, Counts())

    def _counts_of(self, session: Session, event_ids: list[str]) -> dict[str, Counts]:
        if not event_ids:
            return {}
        found: dict[str, dict[str, int]] = {}
        for event_id, status, count in session.execute(
            select(RegistrationRow.event_id, RegistrationRow.status, func.count())
            .where(RegistrationRow.event_id.in_(event_ids))
            .group_by(RegistrationRow.event_id, RegistrationRow.status)
        ):
            found.setdefault(event_id, {})[status] = count
        return {
            event_id: Counts(
                confirmed=by.get(RegistrationStatus.CONFIRMED.value, 0),
                waitlisted=by.get(RegistrationStatus.WAITLISTED.value, 0),
            )
            for event_id, by in found.items()
        }

    def _active(self, session: Session, event_id: str) -> list[RegistrationRow]:
        return list(
            session.scalars(
                select(RegistrationRow)
                .where(
                    RegistrationRow.event_id == event_id,
                    RegistrationRow.status != RegistrationStatus.CANCELLED.value,
                )
                .order_by(RegistrationRow.queued_at, RegistrationRow.seq)
            )
        )

    def _promote(self, session: Session, event: EventRow) -> int:
        """Give free seats to the waitlist, first come first served; the event row is locked."""
        waitlist = list(
            session.scalars(
                select(RegistrationRow)
                .where(
                    RegistrationRow.event_id == event.id,
                    RegistrationRow.status == RegistrationStatus.WAITLISTED.value,
                )
                .order_by(RegistrationRow.queued_at, RegistrationRow.seq)
            )
        )
        counts = self._counts(session, event.id)
        chosen = set(to_promote(event.capacity, counts.confirmed, [r.id for r in waitlist]))
        now = to_utc_naive(self._clock())
        for registration in waitlist:
            if registration.id in chosen:
                registration.status = RegistrationStatus.CONFIRMED.value
                registration.updated_at = now
                session.flush()
                self._announce_registration(
                    session, event, registration, RegistrationChange.PROMOTED
                )
        return len(chosen)

    def _waitlist_position(self, session: Session, registration: RegistrationRow) -> int | None:
        if registration.status != RegistrationStatus.WAITLISTED:
            return None
        ahead = session.scalar(
            select(func.count())
            .select_from(RegistrationRow)
            .where(
                RegistrationRow.event_id == registration.event_id,
                RegistrationRow.status == RegistrationStatus.WAITLISTED.value,
                or_(
                    RegistrationRow.queued_at < registration.queued_at,
                    and_(
                        RegistrationRow.queued_at == registration.queued_at,
                        RegistrationRow.seq < registration.seq,
                    ),
                ),
            )
        )
        return (ahead or 0) + 1

    @staticmethod
    def _fields(row: EventRow) -> dict[str, Any]:
        return {
            "title": row.title,
            "description": row.description,
            "kind": ConferenceKind(row.kind),
            "starts_at": from_utc_naive(row.starts_at),
            "ends_at": from_utc_naive(row.ends_at),
            "venue_address": row.venue_address,
            "city": row.city,
            "region": row.region,
            "department": row.department,
            "online_url": row.online_url,
            "capacity": row.capacity,
        }

    def _public(self, row: EventRow, counts: Counts) -> EventPublic:
        return EventPublic(
            id=row.id,
            organiser=row.organiser,
            **self._fields(row),
            status=row.status,
            version=row.version,
            seats_left=seats_left(row.capacity, counts.confirmed),
            confirmed=counts.confirmed,
            waitlisted=counts.waitlisted,
            page_url=self.page_url(row.id),
            ics_url=self.ics_url(row.id),
        )

    def _summary(self, row: EventRow) -> ConferenceSummaryV1:
        fields = self._fields(row)
        return ConferenceSummaryV1(
            event_id=uuid.UUID(row.id),
            title=row.title,
            kind=fields["kind"],
            starts_at=fields["starts_at"],
            ends_at=fields["ends_at"],
            venue_address=row.venue_address,
            city=row.city,
            department=row.department,
            region=row.region,
            online_url=row.online_url,
            cancelled=row.status == EventStatus.CANCELLED,
            page_url=self.page_url(row.id),
            ics_url=self.ics_url(row.id),
        )

    def _announce_event(self, session: Session, row: EventRow, change: ConferenceChange) -> None:
        payload = ConferenceV1(
            event_id=uuid.UUID(row.id),
            change=change,
            version=row.version,
            organiser=row.organiser,
            **self._fields(row),
            page_url=self.page_url(row.id),
            ics_url=self.ics_url(row.id),
            at=self._clock(),
        )
        self._emit(session, CONFERENCES, payload, subject=row.id, correlation_id=row.id)

    def _announce_registration(
        self,
        session: Session,
        event: EventRow,
        registration: RegistrationRow,
        change: RegistrationChange,
        by: Literal["person", "organiser"] | None = None,
    ) -> None:
        active = change != RegistrationChange.CANCELLED
        if active:
            registration.link_sent_at = to_utc_naive(self._clock())
        payload = RegistrationV1(
            registration_id=uuid.UUID(registration.id),
            event_id=uuid.UUID(event.id),
            change=change,
            cancelled_by=by,
            name=registration.name,
            email=registration.email,
            locale=registration.locale,
            cancel_url=self.cancel_url(registration) if active else None,
            waitlist_position=self._waitlist_position(session, registration),
            conference=self._summary(event),
            at=self._clock(),
        )
        self._emit(
            session, REGISTRATIONS, payload, subject=event.id, correlation_id=registration.id
        )

    def _emit(
        self,
        session: Session,
        topic: Topic,
        payload: BaseModel,
        *,
        subject: str,
        correlation_id: str,
        event_id: str | None = None,
    ) -> None:
        envelope = topic.envelope(
            payload, subject=subject, correlationid=correlation_id, id=event_id or str(uuid.uuid4())
        )
        session.add(
            OutboxRow(
                event_id=envelope.id,
                topic=topic.name,
                key=subject.encode(),
                value=envelope.kafka_value(),
                headers=json.dumps(envelope.kafka_headers()),
                correlation_id=correlation_id,
                created_at=to_utc_naive(self._clock()),
            )
        )


def _told(status: RegistrationStatus) -> RegistrationChange:
    """What a person registering is told: a seat, or the waitlist."""
    if status == RegistrationStatus.CONFIRMED:
        return RegistrationChange.CONFIRMED
    return RegistrationChange.WAITLISTED


def _generation(registration: RegistrationRow) -> str:
    """Which registration of a person a link belongs to: when it was last queued (registering
    again after a cancellation queues it anew, and voids the older links)."""
    return registration.queued_at.isoformat()


def _columns(data: EventIn) -> dict[str, Any]:
    return {
        "title": data.title,
        "description": data.description,
        "kind": data.kind.value,
        "starts_at": to_utc_naive(data.starts_at),
        "ends_at": to_utc_naive(data.ends_at),
        "venue_address": data.venue_address,
        "city": data.city,
        "region": data.region,
        "department": data.department,
        "online_url": str(data.online_url) if data.online_url is not None else None,
        "capacity": data.capacity,
    }
