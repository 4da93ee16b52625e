"""Erasure and anonymisation of what the events service keeps about people (plain functions of
a connection, each run as one transaction).

* `erase(reference)`: a person who came through the questionnaire withdrew (`privacy.erasures`):
  their invitations, their peer request and its matches are deleted, with the unsent outbox messages that carried them (name and
  e-mail: an invitation's subject is the reference), and only the tombstone of the reference is
  kept (its SHA-256 and the time), which an invitation reads first (`Repository.erased`) so that
  a decision read later (a lagging consumer, a replayed dead letter) invites no one. Both take
  the reference's lock first (`rebond_sql.erasure.lock_references`): on PostgreSQL an
  invitation under way is waited for, and waits for an erasure under way; on SQLite the store's
  transactions take turns (`rebond_sql.Database`).
* `anonymise(now, retention)`: registrations to conferences that ended more than `retention`
  ago lose their name and e-mail, and those conferences' invitations are deleted; so are the
  peer requests received more than `retention` ago (the contact a person shared with a peer;
  their matches keep no contact) and the volunteers who never confirmed their address
  (`python -m rebond_events anonymise`). Counts per conference stay right. Published outbox
  messages need nothing: the relay deletes each once Kafka acknowledged it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Connection, CursorResult, bindparam, delete, insert, select, update

from rebond_contracts.moderation import VolunteerStatus
from rebond_events.domain import email_digest
from rebond_events.tables import (
    OUTBOX,
    conferences,
    erasures,
    invitations,
    peer_attendances,
    peer_matches,
    peer_requests,
    peer_volunteers,
    registrations,
)
from rebond_sql.erasure import lock_references, reference_digest

log = structlog.get_logger(__name__)
ANONYMOUS_NAME = "(anonymisé)"


def erase(connection: Connection, reference: str, now: datetime) -> int:
    """Keep the tombstone of `reference`, delete its invitations and their unsent messages;
    returns how many invitations."""
    lock_references(connection, [reference], erasing=True)
    digest = reference_digest(reference)
    if connection.scalar(select(erasures.c.reference_sha256).where(
        erasures.c.reference_sha256 == digest
    )) is None:  # fmt: skip
        connection.execute(insert(erasures).values(reference_sha256=digest, erased_at=now))
    deleted = _rowcount(
        connection.execute(delete(invitations).where(invitations.c.reference == reference))
    )
    # What the person shared to be introduced to a peer, and their matches (issue 24).
    connection.execute(delete(peer_requests).where(peer_requests.c.reference == reference))
    connection.execute(delete(peer_matches).where(peer_matches.c.reference == reference))
    OUTBOX.forget_subject(connection, reference)
    log.info("invitations_erased", invitations=deleted)
    return deleted


@dataclass(frozen=True)
class Anonymised:
    registrations: int
    invitations: int
    #: People introduced to a peer more than the retention ago: what they shared is deleted.
    peer_requests: int = 0
    #: Volunteers who never confirmed their address within the retention: deleted.
    unconfirmed_volunteers: int = 0


def anonymise(connection: Connection, now: datetime, retention: timedelta) -> Anonymised:
    """Anonymise what is older than `retention` (registrations: counted from the event's end)."""
    ended = select(conferences.c.id).where(conferences.c.ends_at < now - retention)
    ids = connection.scalars(
        select(registrations.c.id).where(
            registrations.c.event_id.in_(ended), registrations.c.name != ANONYMOUS_NAME
        )
    ).all()
    if ids:
        emails = {
            registration_id: f"{registration_id}@anonymise.invalid" for registration_id in ids
        }
        connection.execute(
            update(registrations)
            .where(registrations.c.id == bindparam("registration_id"))
            .values(
                name=ANONYMOUS_NAME, email=bindparam("new_email"),
                email_digest=bindparam("new_digest"),  # stays unique per conference
            ),
            [
                {"registration_id": registration_id, "new_email": email,
                 "new_digest": email_digest(email)}
                for registration_id, email in emails.items()
            ],
        )  # fmt: skip
    deleted = _rowcount(
        connection.execute(delete(invitations).where(invitations.c.event_id.in_(ended)))
    )
    connection.execute(delete(peer_attendances).where(peer_attendances.c.event_id.in_(ended)))
    before = now - retention
    requests = _rowcount(
        connection.execute(delete(peer_requests).where(peer_requests.c.requested_at < before))
    )
    unconfirmed = _rowcount(
        connection.execute(
            delete(peer_volunteers).where(
                peer_volunteers.c.status == VolunteerStatus.UNCONFIRMED.value,
                peer_volunteers.c.created_at < before,
            )
        )
    )
    done = Anonymised(len(ids), deleted, requests, unconfirmed)
    log.info(
        "anonymised", registrations=done.registrations, invitations=done.invitations,
        peer_requests=done.peer_requests, unconfirmed_volunteers=done.unconfirmed_volunteers,
    )  # fmt: skip
    return done


def _rowcount(result: Any) -> int:
    """How many rows a DML statement touched (its result is a `CursorResult`; `execute` is typed
    as returning any `Result`)."""
    return int(cast("CursorResult[Any]", result).rowcount or 0)
