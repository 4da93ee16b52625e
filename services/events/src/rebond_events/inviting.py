"""Use case of the router's invitees: invite a person who consented to invitations to the next
conference in their department, else their region; at most once per person and conference;
never a person who asked for erasure."""

from collections.abc import Sequence
from typing import NamedTuple

from rebond_contracts.payloads import InvitationContactV1
from rebond_events.announcements import Announcer, invitation_id
from rebond_events.domain import Candidate, choose_invitation, email_digest
from rebond_events.ports import Invitation, Outcome, Repository, each
from rebond_sql.types import Clock

#: How many upcoming conferences of the region an invitation chooses from.
CANDIDATES = 200


class Invitee(NamedTuple):
    """One record of the router's invitees, as `invite` takes it, and the `traceparent` its
    invitation carries (`Outcome.traced`)."""

    reference: str
    correlation_id: str
    contact: InvitationContactV1
    trace: str | None = None


def invite(
    repository: Repository,
    announce: Announcer,
    clock: Clock,
    reference: str,
    correlation_id: str,
    contact: InvitationContactV1,
) -> Outcome[bool]:
    """Whether the person was invited (and the invitation to announce). The tombstone is read
    first, under the reference's lock: an erasure under way is waited for, and then seen."""
    if repository.erased(reference):
        return Outcome(False)
    now = clock()
    upcoming = {c.id: c for c in repository.upcoming(contact.region, now, CANDIDATES)}
    candidates = [
        Candidate(c.id, c.details.starts_at, c.details.department, c.details.region)
        for c in upcoming.values()
    ]
    chosen = choose_invitation(candidates, contact.department, contact.region, now)
    if chosen is None:
        return Outcome(False)
    candidate, match = chosen
    digest = email_digest(contact.email)
    if repository.known(candidate.event_id, digest):
        return Outcome(False)
    invitation = Invitation(
        id=invitation_id(candidate.event_id, digest), event_id=candidate.event_id,
        email_digest=digest, reference=reference, created_at=now,
    )  # fmt: skip
    repository.add_invitation(invitation)
    message = announce.invitation(
        upcoming[candidate.event_id], invitation.id, reference, correlation_id, contact, match, now
    )
    return Outcome(True, [message])


def invite_all(
    repository: Repository, announce: Announcer, clock: Clock, invitees: Sequence[Invitee]
) -> Outcome[list[bool]]:
    """`invite` for each invitee in order, in one transaction: each sees what those before it
    wrote (an address invited by an earlier record of the batch is `known`, a reference erased
    is `erased`), so a batch invites exactly whom one record per transaction would."""
    return each([
        invite(repository, announce, clock, i.reference, i.correlation_id, i.contact).traced(i.trace)
        for i in invitees
    ])  # fmt: skip
