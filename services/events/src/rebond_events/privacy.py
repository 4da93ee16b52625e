"""Erasure and anonymisation of what the events service keeps about people.

* `erase(reference)`: a person who came through the questionnaire withdrew (`privacy.erasures`):
  their invitations are deleted, with the outbox rows that carried them (name and e-mail), and
  only the tombstone of the reference is kept (`ErasureRow`: its SHA-256 and the time), which
  `Conferences.invite` reads (`erased`) so that a decision read later (a lagging consumer, a
  replayed dead letter) invites no one. Both take the reference's lock first
  (`rebond_sql.erasure.lock_references`): on PostgreSQL an invitation under way is waited for,
  and waits for an erasure under way (on SQLite every transaction begins `IMMEDIATE`).
* `anonymise(now, retention)`: registrations to conferences that ended more than `retention`
  ago lose their name and e-mail and those conferences' invitations are deleted; outbox rows
  published more than `retention` ago are deleted (`python -m rebond_events anonymise`).
  Counts per conference stay right.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from rebond_contracts.topics import INVITATIONS
from rebond_events.domain import email_digest, to_utc_naive
from rebond_events.store import ErasureRow, EventRow, InvitationRow, OutboxRow, RegistrationRow
from rebond_sql.erasure import lock_references, reference_digest

log = structlog.get_logger(__name__)
ANONYMOUS_NAME = "(anonymisé)"


def _now() -> datetime:
    return datetime.now(UTC)


def erased(session: Session, reference: str) -> bool:
    """Whether `reference` was erased, read once the session's transaction holds its lock."""
    lock_references(session.connection(), [reference], erasing=False)
    return session.get(ErasureRow, reference_digest(reference)) is not None


def erase(engine: Engine, reference: str, now: datetime | None = None) -> int:
    """Keep the tombstone of `reference`, delete its invitations (and their outbox rows);
    returns how many invitations."""
    with Session(engine) as session, session.begin():
        lock_references(session.connection(), [reference], erasing=True)
        digest = reference_digest(reference)
        if session.get(ErasureRow, digest) is None:
            session.add(ErasureRow(reference_sha256=digest, erased_at=to_utc_naive(now or _now())))
        # A DML statement's result is a `CursorResult` (with `rowcount`); `Session.execute` is
        # typed as returning any `Result`.
        deleted = cast(
            "CursorResult[Any]",
            session.execute(delete(InvitationRow).where(InvitationRow.reference == reference)),
        ).rowcount
        session.execute(
            delete(OutboxRow).where(
                OutboxRow.topic == INVITATIONS.name, OutboxRow.key == reference.encode()
            )
        )
    log.info("invitations_erased", invitations=deleted)
    return int(deleted or 0)


@dataclass(frozen=True)
class Anonymised:
    registrations: int
    invitations: int
    outbox: int


def anonymise(engine: Engine, now: datetime, retention: timedelta) -> Anonymised:
    """Anonymise what is older than `retention` (registrations: counted from the event's end)."""
    cutoff = to_utc_naive(now - retention)
    with Session(engine) as session, session.begin():
        ended = select(EventRow.id).where(EventRow.ends_at < cutoff)
        rows = session.scalars(
            select(RegistrationRow).where(
                RegistrationRow.event_id.in_(ended), RegistrationRow.name != ANONYMOUS_NAME
            )
        ).all()
        for row in rows:
            row.name = ANONYMOUS_NAME
            row.email = f"{row.id}@anonymise.invalid"
            row.email_digest = email_digest(row.email)  # stays unique per conference
        invitations = cast(
            "CursorResult[Any]",
            session.execute(delete(InvitationRow).where(InvitationRow.event_id.in_(ended))),
        ).rowcount
        outbox = cast(
            "CursorResult[Any]",
            session.execute(
                delete(OutboxRow).where(OutboxRow.sent_at.is_not(None), OutboxRow.sent_at < cutoff)
            ),
        ).rowcount
    done = Anonymised(len(rows), int(invitations or 0), int(outbox or 0))
    log.info(
        "anonymised",
        registrations=done.registrations,
        invitations=done.invitations,
        outbox=done.outbox,
    )
    return done
