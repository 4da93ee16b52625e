"""The stories' and the peer exchange's view of the events store (SQLAlchemy Core on the
connection of one transaction, `store.Store.apply_on`).

Deleting what is about someone (a story withdrawn or rejected, a volunteer erased) also drops
the unsent outbox messages about it (`Outbox.forget_subject`: a message's subject is the story,
volunteer or reference it is about), in the same transaction: what was deleted is not mailed
afterwards.
"""

from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from rebond_events.stories import Story, StoryStatus
from rebond_events.tables import OUTBOX, stories


class SqlCommunity:
    """`stories.StoryRepository` (and the peer exchange's) on `connection`."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    # --- stories ------------------------------------------------------------------------------

    def story(self, story_id: str) -> Story | None:
        row = self.connection.execute(select(stories).where(stories.c.id == story_id)).one_or_none()
        return None if row is None else _story(row._asdict())

    def add_story(self, story: Story) -> None:
        self.connection.execute(insert(stories).values(_story_row(story)))

    def save_story(self, story: Story) -> None:
        self.connection.execute(
            update(stories).where(stories.c.id == story.id).values(_story_row(story))
        )

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


def _story(row: dict[str, Any]) -> Story:
    return Story(**{**row, "status": StoryStatus(row["status"])})


def _story_row(story: Story) -> dict[str, Any]:
    return {**asdict(story), "status": story.status.value}
