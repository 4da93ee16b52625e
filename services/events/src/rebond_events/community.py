"""What the routes and the Kafka handlers call for the success stories and the peer exchange:
each use case in its transaction (`store.Store.apply_on`, on `community_sql.SqlCommunity`),
then its messages published (quietly: during a Kafka outage they wait in the outbox and the
reply does not; a Kafka handler's are published before its offset moves on)."""

from collections.abc import Callable
from functools import partial
from typing import TypeVar

from rebond_events import stories
from rebond_events.community_sql import SqlCommunity
from rebond_events.letters import CommunityLinks
from rebond_events.outbox import Publisher
from rebond_events.ports import Clock, Outcome
from rebond_events.store import Store
from rebond_events.stories import StoryEdit, StoryForModerator, StoryIn, StoryPublic, StoryStatus

T = TypeVar("T")


class Community:
    """Success stories and peer exchange, as the API, the portal and the handlers use them."""

    def __init__(
        self, store: Store, links: CommunityLinks, publisher: Publisher, clock: Clock
    ) -> None:
        self.store = store
        self.links = links
        self.publisher = publisher
        self.clock = clock

    # --- stories ------------------------------------------------------------------------------

    async def submit_story(self, data: StoryIn) -> str:
        """Keep a story for moderation; its e-mail goes after the reply (`flush_soon`)."""
        outcome = await self._apply(
            partial(stories.submit, links=self.links, clock=self.clock, data=data)
        )
        self.publisher.flush_soon(outcome.subjects)
        return outcome.value

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

    # --- running a use case -------------------------------------------------------------------

    async def _apply(self, use_case: Callable[[SqlCommunity], Outcome[T]]) -> Outcome[T]:
        return await self.store.apply_on(SqlCommunity, use_case, self.clock())

    async def _read(self, query: Callable[[SqlCommunity], T]) -> T:
        outcome = await self._apply(lambda r: Outcome(query(r)))
        return outcome.value

    async def _publish_now(self, use_case: Callable[[SqlCommunity], Outcome[T]]) -> T:
        outcome = await self._apply(use_case)
        await self.publisher.flush_quietly(outcome.subjects)
        return outcome.value
