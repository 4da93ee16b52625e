"""The stories' and the peer exchange's view of the events store (SQLAlchemy Core on the
connection of one transaction, `store.Store.apply_on`).

Deleting what is about someone (a story withdrawn or rejected, a volunteer erased) also drops
the unsent outbox messages about it (`Outbox.forget_subject`: a message's subject is the story,
volunteer or reference it is about), in the same transaction: what was deleted is not mailed
afterwards.
"""

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from rebond_contracts.moderation import VolunteerStatus
from rebond_contracts.payloads import ConferenceKind
from rebond_events.domain import EventStatus
from rebond_events.peers import (
    Match,
    MatchStatus,
    PeerRequest,
    PeerSession,
    Volunteer,
)
from rebond_events.repository import SqlRepository, one_row, replace_row
from rebond_events.stories import Story, StoryStatus
from rebond_events.tables import (
    OUTBOX,
    conferences,
    peer_attendances,
    peer_matches,
    peer_requests,
    peer_volunteers,
    stories,
)


class SqlCommunity:
    """`stories.StoryRepository` and `peers.PeerRepository` on `connection`."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    # --- stories ------------------------------------------------------------------------------

    def story(self, story_id: str) -> Story | None:
        row = one_row(self.connection, stories, stories.c.id == story_id)
        return None if row is None else _story(row._asdict())

    def add_story(self, story: Story) -> None:
        self.connection.execute(insert(stories).values(_story_row(story)))

    def save_story(self, story: Story) -> None:
        replace_row(self.connection, stories, _story_row(story))

    def delete_story(self, story_id: str) -> None:
        self.connection.execute(delete(stories).where(stories.c.id == story_id))
        OUTBOX.forget_subject(self.connection, story_id)

    def stories(
        self, status: StoryStatus, region: str | None = None, stage: str | None = None
    ) -> list[Story]:
        query = select(stories).where(stories.c.status == status.value)
        if region is not None:
            query = query.where(stories.c.region == region)
        if stage is not None:
            query = query.where(stories.c.stage == stage)
        rows = self.connection.execute(query.order_by(stories.c.submitted_at.desc()).limit(200))
        return [_story(row._asdict()) for row in rows]

    # --- volunteers ---------------------------------------------------------------------------

    def volunteer(self, volunteer_id: str) -> Volunteer | None:
        row = one_row(self.connection, peer_volunteers, peer_volunteers.c.id == volunteer_id)
        return None if row is None else _volunteer(row._asdict())

    def add_volunteer(self, volunteer: Volunteer) -> None:
        self.connection.execute(insert(peer_volunteers).values(_volunteer_row(volunteer)))

    def save_volunteer(self, volunteer: Volunteer) -> None:
        replace_row(self.connection, peer_volunteers, _volunteer_row(volunteer))

    def delete_volunteer(self, volunteer_id: str) -> None:
        self.stop_attending(volunteer_id)
        self.connection.execute(delete(peer_volunteers).where(peer_volunteers.c.id == volunteer_id))
        OUTBOX.forget_subject(self.connection, volunteer_id)

    def volunteers(self, status: VolunteerStatus, region: str | None = None) -> list[Volunteer]:
        query = select(peer_volunteers).where(peer_volunteers.c.status == status.value)
        if region is not None:
            query = query.where(peer_volunteers.c.region == region)
        rows = self.connection.execute(query.order_by(peer_volunteers.c.created_at).limit(500))
        return [_volunteer(row._asdict()) for row in rows]

    def introductions_since(self, volunteer_ids: Sequence[str], since: datetime) -> dict[str, int]:
        if not volunteer_ids:
            return {}
        rows = self.connection.execute(
            select(peer_matches.c.volunteer_id, func.count())
            .where(
                peer_matches.c.volunteer_id.in_(list(volunteer_ids)),
                peer_matches.c.status == MatchStatus.PROPOSED.value,
                peer_matches.c.created_at >= since,
            )
            .group_by(peer_matches.c.volunteer_id)
        )
        return {volunteer_id: count for volunteer_id, count in rows}

    # --- people asking for a peer, and their matches ------------------------------------------

    def erased(self, reference: str) -> bool:
        """`ports.Repository.erased`: the person of `reference` asked for erasure."""
        return SqlRepository(self.connection).erased(reference)

    def peer_request(self, reference: str) -> PeerRequest | None:
        row = one_row(self.connection, peer_requests, peer_requests.c.reference == reference)
        return None if row is None else PeerRequest(**row._asdict())

    def add_peer_request(self, request: PeerRequest) -> None:
        self.connection.execute(insert(peer_requests).values(asdict(request)))

    def match(self, match_id: str) -> Match | None:
        row = one_row(self.connection, peer_matches, peer_matches.c.id == match_id)
        return None if row is None else _match(row._asdict())

    def matches_of(self, reference: str) -> list[Match]:
        rows = self.connection.execute(
            select(peer_matches)
            .where(peer_matches.c.reference == reference)
            .order_by(peer_matches.c.created_at)
        )
        return [_match(row._asdict()) for row in rows]

    def add_match(self, match: Match) -> None:
        self.connection.execute(insert(peer_matches).values(_match_row(match)))

    def save_match(self, match: Match) -> None:
        replace_row(self.connection, peer_matches, _match_row(match))

    def reporters(self, volunteer_ids: Sequence[str]) -> dict[str, str]:
        if not volunteer_ids:
            return {}
        rows = self.connection.execute(
            select(peer_matches.c.volunteer_id, peer_matches.c.declined_by)
            .where(
                peer_matches.c.volunteer_id.in_(list(volunteer_ids)),
                peer_matches.c.status == MatchStatus.REPORTED.value,
            )
            .order_by(peer_matches.c.created_at)
        )
        return {volunteer_id: side for volunteer_id, side in rows}  # the latest wins

    # --- peer exchange sessions ---------------------------------------------------------------

    def peer_sessions(self, since: datetime, event_id: str | None = None) -> list[PeerSession]:
        query = select(
            conferences.c.id, conferences.c.title, conferences.c.starts_at, conferences.c.city,
            conferences.c.region,
        ).where(
            conferences.c.kind == ConferenceKind.PEER_EXCHANGE.value,
            conferences.c.status == EventStatus.SCHEDULED.value,
            conferences.c.starts_at > since,
        )  # fmt: skip
        if event_id is not None:
            query = query.where(conferences.c.id == event_id)
        rows = self.connection.execute(query.order_by(conferences.c.starts_at).limit(100))
        return [PeerSession(**row._asdict()) for row in rows]

    def attending(self, volunteer_id: str) -> set[str]:
        return set(
            self.connection.scalars(
                select(peer_attendances.c.event_id).where(
                    peer_attendances.c.volunteer_id == volunteer_id
                )
            )
        )

    def attend(self, volunteer_id: str, event_id: str, now: datetime) -> None:
        if event_id not in self.attending(volunteer_id):
            self.connection.execute(
                insert(peer_attendances).values(
                    volunteer_id=volunteer_id, event_id=event_id, created_at=now
                )
            )

    def stop_attending(self, volunteer_id: str, event_id: str | None = None) -> None:
        query = delete(peer_attendances).where(peer_attendances.c.volunteer_id == volunteer_id)
        if event_id is not None:
            query = query.where(peer_attendances.c.event_id == event_id)
        self.connection.execute(query)

    def attendees(self, event_id: str) -> list[Volunteer]:
        rows = self.connection.execute(
            select(peer_volunteers)
            .join(peer_attendances, peer_attendances.c.volunteer_id == peer_volunteers.c.id)
            .where(
                peer_attendances.c.event_id == event_id,
                peer_volunteers.c.status == VolunteerStatus.APPROVED.value,
            )
            .order_by(peer_attendances.c.created_at)
            .limit(200)
        )
        return [_volunteer(row._asdict()) for row in rows]


def _volunteer(row: dict[str, Any]) -> Volunteer:
    return Volunteer(**{**row, "status": VolunteerStatus(row["status"])})


def _volunteer_row(volunteer: Volunteer) -> dict[str, Any]:
    return {**asdict(volunteer), "status": volunteer.status.value}


def _match(row: dict[str, Any]) -> Match:
    return Match(**{**row, "status": MatchStatus(row["status"])})


def _match_row(match: Match) -> dict[str, Any]:
    return {**asdict(match), "status": match.status.value}


def _story(row: dict[str, Any]) -> Story:
    return Story(**{**row, "status": StoryStatus(row["status"])})


def _story_row(story: Story) -> dict[str, Any]:
    return {**asdict(story), "status": story.status.value}
