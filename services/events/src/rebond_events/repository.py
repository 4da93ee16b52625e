"""The events store's `Repository`: SQLAlchemy Core on one connection, inside the transaction
of the use case it serves (`store.Store.apply`).

**Seat counting holds under concurrency** because every use case that counts seats or changes
registrations takes its conference with `conference(…, lock=True)` first, and two such
transactions of one conference never overlap:

* PostgreSQL: `SELECT … FOR UPDATE` on the conference's row. A second transaction waits at that
  statement until the first commits; under READ COMMITTED each later statement of it reads what
  was committed before it began, so its count includes the first one's registration.
* SQLite: it has no row locks (SQLAlchemy leaves `FOR UPDATE` out), and needs none: a SQLite
  store belongs to one process, where `rebond_sql.Database` runs one transaction at a time
  (its turn lock, around the whole unit of work), so no count is read while another
  transaction of the store is under way. Several instances need PostgreSQL.
"""

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Table,
    and_,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from rebond_contracts.payloads import ConferenceKind
from rebond_events.domain import (
    Conference,
    Counts,
    Details,
    EventStatus,
    Registration,
    RegistrationStatus,
)
from rebond_events.ports import Invitation, Listing
from rebond_events.tables import conferences, erasures, invitations, registrations
from rebond_sql.erasure import lock_references, reference_digest

_QUEUE_ORDER = (registrations.c.queued_at, registrations.c.seq)


class SqlRepository:
    """`ports.Repository` on `connection` (see the module for its locks)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    # --- conferences --------------------------------------------------------------------------

    def conference(self, event_id: str, *, lock: bool = False) -> Conference | None:
        query = select(conferences).where(conferences.c.id == event_id)
        row = self.connection.execute(query.with_for_update() if lock else query).one_or_none()
        return None if row is None else _conference(row)

    def add_conference(self, conference: Conference) -> None:
        self.connection.execute(insert(conferences).values(_conference_row(conference)))

    def save_conference(self, conference: Conference) -> None:
        replace_row(self.connection, conferences, _conference_row(conference))

    def counts(self, event_ids: Sequence[str]) -> dict[str, Counts]:
        if not event_ids:
            return {}
        found: dict[str, dict[str, int]] = {}
        for event_id, status, count in self.connection.execute(
            select(registrations.c.event_id, registrations.c.status, func.count())
            .where(registrations.c.event_id.in_(list(event_ids)))
            .group_by(registrations.c.event_id, registrations.c.status)
        ):
            found.setdefault(event_id, {})[status] = count
        return {
            event_id: Counts(
                confirmed=by.get(RegistrationStatus.CONFIRMED, 0),
                waitlisted=by.get(RegistrationStatus.WAITLISTED, 0),
            )
            for event_id, by in found.items()
        }

    def listing(self, query: Listing) -> tuple[int, list[Conference]]:
        conditions = [
            conferences.c.status == EventStatus.SCHEDULED,
            conferences.c.starts_at >= query.since,
        ]
        if query.region is not None:
            conditions.append(conferences.c.region == query.region)
        if query.department is not None:
            conditions.append(conferences.c.department == query.department)
        if query.kind is not None:
            conditions.append(conferences.c.kind == query.kind.value)
        total = self.connection.scalar(
            select(func.count()).select_from(conferences).where(*conditions)
        )
        rows = self.connection.execute(
            select(conferences)
            .where(*conditions)
            .order_by(conferences.c.starts_at, conferences.c.id)
            .offset((query.page - 1) * query.per_page)
            .limit(query.per_page)
        )
        return int(total or 0), [_conference(row) for row in rows]

    def upcoming(self, region: str, after: datetime, limit: int) -> list[Conference]:
        rows = self.connection.execute(
            select(conferences)
            .where(
                conferences.c.status == EventStatus.SCHEDULED,
                conferences.c.region == region,
                conferences.c.starts_at > after,
            )
            .order_by(conferences.c.starts_at)
            .limit(limit)
        )
        return [_conference(row) for row in rows]

    def starting_between(self, start: datetime, end: datetime) -> list[Conference]:
        rows = self.connection.execute(
            select(conferences)
            .where(
                conferences.c.status == EventStatus.SCHEDULED,
                conferences.c.starts_at > start,
                conferences.c.starts_at <= end,
            )
            .order_by(conferences.c.starts_at)
        )
        return [_conference(row) for row in rows]

    # --- registrations ------------------------------------------------------------------------

    def registration(self, registration_id: str) -> Registration | None:
        return self._one(registrations.c.id == registration_id)

    def registration_of(self, event_id: str, email_digest: str) -> Registration | None:
        return self._one(
            registrations.c.event_id == event_id, registrations.c.email_digest == email_digest
        )

    def queue(
        self, event_id: str, statuses: Collection[RegistrationStatus] | None = None
    ) -> list[Registration]:
        query = select(registrations).where(registrations.c.event_id == event_id)
        if statuses is not None:
            query = query.where(registrations.c.status.in_([s.value for s in statuses]))
        return [
            _registration(row) for row in self.connection.execute(query.order_by(*_QUEUE_ORDER))
        ]

    def waitlist_position(self, registration: Registration) -> int:
        queued_at, seq = registration.queued_at, registration.seq
        ahead = self.connection.scalar(
            select(func.count())
            .select_from(registrations)
            .where(
                registrations.c.event_id == registration.event_id,
                registrations.c.status == RegistrationStatus.WAITLISTED,
                or_(
                    registrations.c.queued_at < queued_at,
                    and_(registrations.c.queued_at == queued_at, registrations.c.seq < seq),
                ),
            )
        )
        return int(ahead or 0) + 1

    def add_registration(self, registration: Registration) -> Registration:
        result = self.connection.execute(
            insert(registrations).values(_registration_row(registration))
        )
        [seq] = result.inserted_primary_key or (None,)
        return replace(registration, seq=seq)

    def save_registration(self, registration: Registration) -> None:
        replace_row(self.connection, registrations, _registration_row(registration))

    # --- invitations --------------------------------------------------------------------------

    def erased(self, reference: str) -> bool:
        lock_references(self.connection, [reference], erasing=False)
        digest = reference_digest(reference)
        return bool(
            self.connection.scalar(select(exists().where(erasures.c.reference_sha256 == digest)))
        )

    def known(self, event_id: str, email_digest: str) -> bool:
        invited = exists().where(
            invitations.c.event_id == event_id, invitations.c.email_digest == email_digest
        )
        registered = exists().where(
            registrations.c.event_id == event_id, registrations.c.email_digest == email_digest
        )
        return bool(self.connection.scalar(select(or_(invited, registered))))

    def add_invitation(self, invitation: Invitation) -> None:
        self.connection.execute(
            insert(invitations).values(
                id=invitation.id, event_id=invitation.event_id,
                email_digest=invitation.email_digest, reference=invitation.reference,
                created_at=invitation.created_at,
            )
        )  # fmt: skip

    def _one(self, *where: ColumnElement[bool]) -> Registration | None:
        row = one_row(self.connection, registrations, *where)
        return None if row is None else _registration(row)


def one_row(connection: Connection, table: Table, *where: ColumnElement[bool]) -> Row[Any] | None:
    """The row of `table` that matches `where`, if any (at most one does)."""
    return connection.execute(select(table).where(*where)).one_or_none()


def replace_row(connection: Connection, table: Table, row: dict[str, Any]) -> None:
    """Write `row` (every column) over the row of `table` that has its `id`."""
    connection.execute(update(table).where(table.c.id == row["id"]).values(row))


def _conference(row: Row[Any]) -> Conference:
    return Conference(
        id=row.id, organiser=row.organiser,
        details=Details(
            title=row.title, description=row.description, kind=ConferenceKind(row.kind),
            starts_at=row.starts_at, ends_at=row.ends_at, venue_address=row.venue_address,
            city=row.city, region=row.region, department=row.department,
            online_url=row.online_url, capacity=row.capacity,
        ),
        status=EventStatus(row.status), version=row.version, created_at=row.created_at,
        updated_at=row.updated_at,
    )  # fmt: skip


def _conference_row(conference: Conference) -> dict[str, Any]:
    details = conference.details
    return {
        "id": conference.id, "organiser": conference.organiser, "title": details.title,
        "description": details.description, "kind": details.kind.value,
        "starts_at": details.starts_at, "ends_at": details.ends_at,
        "venue_address": details.venue_address, "city": details.city,
        "department": details.department, "region": details.region,
        "online_url": details.online_url, "capacity": details.capacity,
        "status": conference.status.value, "version": conference.version,
        "created_at": conference.created_at, "updated_at": conference.updated_at,
    }  # fmt: skip


def _registration(row: Row[Any]) -> Registration:
    return Registration(
        id=row.id, event_id=row.event_id, name=row.name, email=row.email,
        email_digest=row.email_digest, consent=row.consent, locale=row.locale,
        status=RegistrationStatus(row.status), queued_at=row.queued_at,
        created_at=row.created_at, updated_at=row.updated_at, link_sent_at=row.link_sent_at,
        reminded_at=row.reminded_at, seq=row.seq,
    )  # fmt: skip


def _registration_row(registration: Registration) -> dict[str, Any]:
    return {
        "id": registration.id, "event_id": registration.event_id, "name": registration.name,
        "email": registration.email, "email_digest": registration.email_digest,
        "consent": registration.consent, "locale": registration.locale,
        "status": registration.status.value, "queued_at": registration.queued_at,
        "created_at": registration.created_at, "updated_at": registration.updated_at,
        "link_sent_at": registration.link_sent_at, "reminded_at": registration.reminded_at,
    }  # fmt: skip
