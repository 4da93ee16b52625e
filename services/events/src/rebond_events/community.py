"""What the routes and the Kafka handlers call for the success stories and the peer exchange:
each use case in its transaction (`store.Store.apply_on`, on `community_sql.SqlCommunity`),
then its messages published (quietly: during a Kafka outage they wait in the outbox and the
reply does not; a Kafka handler's are published before its offset moves on)."""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Literal, TypeVar

from rebond_contracts.moderation import VolunteerForModerator, VolunteerStatus
from rebond_contracts.payloads import PeerRequestV1
from rebond_events import peers, stories
from rebond_events.community_sql import SqlCommunity
from rebond_events.letters import CommunityLinks
from rebond_events.outbox import Publisher, UseCases
from rebond_events.peers import (
    PeerAttending,
    SessionForVolunteer,
    Side,
    VolunteerIn,
)
from rebond_events.ports import Outcome, each
from rebond_events.store import Store
from rebond_events.stories import StoryEdit, StoryForModerator, StoryIn, StoryPublic, StoryStatus
from rebond_sql.types import Clock

T = TypeVar("T")


class Community(UseCases[SqlCommunity]):
    """Success stories and peer exchange, as the API, the portal and the handlers use them."""

    def __init__(
        self, store: Store, links: CommunityLinks, publisher: Publisher, clock: Clock
    ) -> None:
        super().__init__(store, publisher, clock)
        self.links = links

    # --- stories ------------------------------------------------------------------------------

    async def submit_story(self, data: StoryIn) -> str:
        """Keep a story for moderation; its e-mail goes after the reply (`flush_soon`)."""
        return await self._publish_soon(
            partial(stories.submit, links=self.links, clock=self.clock, data=data)
        )

    async def published_stories(
        self, region: str | None = None, stage: str | None = None
    ) -> list[StoryPublic]:
        found = await self._read(
            lambda r: r.stories(StoryStatus.PUBLISHED, region=region, stage=stage)
        )
        return [story.public() for story in found]

    async def stories_to_moderate(self, status: StoryStatus) -> list[StoryForModerator]:
        found = await self._read(lambda r: r.stories(status))
        return [story.for_moderator() for story in found]

    async def approve_story(self, moderator: str, story_id: str) -> StoryForModerator:
        return await self._publish_now(
            partial(stories.approve, links=self.links, clock=self.clock, moderator=moderator,
                    story_id=story_id)
        )  # fmt: skip

    async def reject_story(self, moderator: str, story_id: str) -> None:
        await self._publish_now(
            partial(stories.reject, clock=self.clock, moderator=moderator, story_id=story_id)
        )

    async def edit_story(self, moderator: str, story_id: str, data: StoryEdit) -> StoryForModerator:
        return await self._publish_now(
            partial(stories.edit, clock=self.clock, moderator=moderator, story_id=story_id,
                    data=data)
        )  # fmt: skip

    async def withdraw_story(self, story_id: str, token: str) -> None:
        await self._apply(
            partial(stories.withdraw, links=self.links, story_id=story_id, token=token)
        )

    # --- peer volunteers -----------------------------------------------------------------------

    async def sign_up(self, data: VolunteerIn) -> str:
        """Keep a volunteer, unconfirmed; the confirmation e-mail goes after the reply."""
        return await self._publish_soon(
            partial(peers.sign_up, links=self.links, clock=self.clock, data=data)
        )

    async def confirm_volunteer(self, volunteer_id: str, token: str) -> VolunteerStatus:
        return await self._publish_now(
            partial(peers.confirm, links=self.links, clock=self.clock,
                    volunteer_id=volunteer_id, token=token)
        )  # fmt: skip

    async def volunteers_to_moderate(self, status: VolunteerStatus) -> list[VolunteerForModerator]:
        """Volunteers of `status`, each with who reported their latest reported match."""

        def query(repository: SqlCommunity) -> list[VolunteerForModerator]:
            found = repository.volunteers(status)
            sides = repository.reporters([volunteer.id for volunteer in found])
            return [volunteer.for_moderator(sides.get(volunteer.id)) for volunteer in found]

        return await self._read(query)

    async def moderate_volunteer(self, volunteer_id: str, approved: bool) -> VolunteerStatus | None:
        return await self._publish_now(
            partial(peers.moderate, links=self.links, clock=self.clock,
                    volunteer_id=volunteer_id, approved=approved)
        )  # fmt: skip

    async def manage_volunteer(
        self, volunteer_id: str, token: str, action: Literal["pause", "resume", "erase"]
    ) -> VolunteerStatus | None:
        return await self._publish_now(
            partial(peers.manage, links=self.links, clock=self.clock,
                    volunteer_id=volunteer_id, token=token, action=action)
        )  # fmt: skip

    # --- peer exchange sessions ---------------------------------------------------------------

    async def sessions(
        self, volunteer_id: str, token: str
    ) -> tuple[peers.Volunteer, list[SessionForVolunteer]]:
        """The volunteer (by their link) and the upcoming `peer_exchange` conferences."""
        outcome = await self._apply(
            partial(peers.sessions, links=self.links, clock=self.clock,
                    volunteer_id=volunteer_id, token=token)
        )  # fmt: skip
        return outcome.value

    async def attend(self, volunteer_id: str, token: str, event_id: str) -> bool:
        outcome = await self._apply(
            partial(peers.attend, links=self.links, clock=self.clock, volunteer_id=volunteer_id,
                    token=token, event_id=event_id)
        )  # fmt: skip
        return outcome.value

    async def leave_session(self, volunteer_id: str, token: str, event_id: str) -> bool:
        outcome = await self._apply(
            partial(peers.leave_session, links=self.links, volunteer_id=volunteer_id,
                    token=token, event_id=event_id)
        )  # fmt: skip
        return outcome.value

    async def attendees(self, event_id: str) -> list[PeerAttending]:
        return await self._read(partial(peers.attendees, event_id=event_id))

    # --- matching -----------------------------------------------------------------------------

    async def request_peer(self, data: PeerRequestV1) -> str | None:
        """Match a person (`peers.request_peer`) and publish what it wrote, and whatever an
        earlier reading of the same request left unsent, before the offset moves on: raises
        if Kafka does not acknowledge it."""
        outcome = await self._apply(
            partial(peers.request_peer, links=self.links, clock=self.clock, data=data)
        )
        await self.publisher.flush([data.reference])
        return outcome.value

    async def request_peers(
        self, requests: Sequence[tuple[PeerRequestV1, str | None]]
    ) -> list[str | None]:
        """A batch of requests (each with the `traceparent` its messages carry), each as
        `request_peer` and in order, in one transaction (each sees the matches of those before
        it: a volunteer's monthly limit counts them), then one publication for all their
        references; raises if either fails, and the whole batch is read again (each request
        then finds itself stored and proposes nothing new)."""

        def each_request(repository: SqlCommunity) -> Outcome[list[str | None]]:
            return each([
                peers.request_peer(repository, self.links, self.clock, data).traced(trace)
                for data, trace in requests
            ])  # fmt: skip

        outcome = await self._apply(each_request)
        await self.publisher.flush([data.reference for data, _ in requests])
        return outcome.value

    async def decline_match(self, match_id: str, side: Side, token: str) -> str | None:
        """One side declines; the next volunteer, if any, is proposed (its match id)."""
        return await self._publish_now(
            partial(peers.decline, links=self.links, clock=self.clock, match_id=match_id,
                    side=side, token=token)
        )  # fmt: skip

    async def report_match(self, match_id: str, side: Side, token: str) -> str | None:
        """One side reports a problem: the volunteer waits for a moderator; a person who
        reported is proposed the next volunteer, if any (its match id)."""
        return await self._publish_now(
            partial(peers.report, links=self.links, clock=self.clock, match_id=match_id,
                    side=side, token=token)
        )  # fmt: skip

    # --- running a use case -------------------------------------------------------------------

    async def _apply(self, use_case: Callable[[SqlCommunity], Outcome[T]]) -> Outcome[T]:
        return await self.store.apply_on(SqlCommunity, use_case, self.clock())

    async def _read(self, query: Callable[[SqlCommunity], T]) -> T:
        outcome = await self._apply(lambda r: Outcome(query(r)))
        return outcome.value
