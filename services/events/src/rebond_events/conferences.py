"""What the routes and the Kafka handlers call: each use case in its transaction
(`store.Store.apply`), then its messages published, each when its caller needs it.

- An organiser's change, and a cancellation, are published before the reply (quietly: during a
  Kafka outage they wait in the outbox and the reply does not).
- A registration is published after the reply (`Publisher.flush_soon`), so the reply takes as
  long whether it wrote an e-mail or not.
- An invitation is published before its invitee's offset is committed: a failure raises, and the
  invitee is read again.
"""

import asyncio
from collections.abc import Sequence
from datetime import date
from functools import partial
from typing import TypeVar

import structlog
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from rebond_contracts.payloads import ConferenceKind, InvitationContactV1
from rebond_events import inviting, privacy, registering, scheduling
from rebond_events.announcements import Announcer
from rebond_events.domain import start_of_day_paris
from rebond_events.models import (
    CancelResult,
    EventIn,
    EventPage,
    EventPatch,
    EventPublic,
    RegistrationForOrganiser,
    RegistrationIn,
)
from rebond_events.outbox import Publisher, UseCase, UseCases
from rebond_events.ports import Listing, Outcome, Repository
from rebond_events.registering import Registered
from rebond_events.store import Store
from rebond_sql.types import Clock

T = TypeVar("T")
log = structlog.get_logger(__name__)


class Conferences(UseCases[Repository]):
    """The Conférences du rebond, as the HTTP API, the portal and the handlers use them."""

    def __init__(
        self, store: Store, announce: Announcer, publisher: Publisher, clock: Clock
    ) -> None:
        super().__init__(store, publisher, clock)
        self.announce = announce
        self.links = announce.links

    # --- organisers ---------------------------------------------------------------------------

    async def create_event(self, organiser: str, data: EventIn) -> EventPublic:
        return await self._publish_now(partial(scheduling.schedule, organiser=organiser, data=data))

    async def update_event(self, organiser: str, event_id: str, patch: EventPatch) -> EventPublic:
        return await self._publish_now(
            partial(scheduling.change, organiser=organiser, event_id=event_id, patch=patch)
        )

    async def cancel_event(self, organiser: str, event_id: str) -> EventPublic:
        return await self._publish_now(
            partial(scheduling.cancel, organiser=organiser, event_id=event_id)
        )

    async def registrations_of(
        self, organiser: str, event_id: str
    ) -> list[RegistrationForOrganiser]:
        return await self.store.read(
            partial(scheduling.registrations_of, organiser=organiser, event_id=event_id)
        )

    # --- public -------------------------------------------------------------------------------

    async def get_event(self, event_id: str) -> EventPublic:
        return await self.store.read(partial(scheduling.shown, links=self.links, event_id=event_id))

    async def list_events(
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
        since = start_of_day_paris(from_day) if from_day is not None else self.clock()
        query = Listing(since, region, department, kind, page, per_page)
        return await self.store.read(partial(scheduling.listing, links=self.links, query=query))

    async def register(self, event_id: str, data: RegistrationIn) -> Registered:
        return await self._publish_soon(partial(registering.register, event_id=event_id, data=data))

    async def cancel_registration(self, registration_id: str, token: str) -> CancelResult:
        return await self._publish_now(
            partial(registering.cancel, registration_id=registration_id, token=token)
        )

    # --- reminders before a conference --------------------------------------------------------

    async def remind(self) -> int:
        """`registering.remind`, published at once (quietly: during a Kafka outage the
        reminders wait in the outbox)."""
        return await self._publish_now(registering.remind)

    async def remind_forever(self, interval_s: float) -> None:
        """`remind` every `interval_s`; a failure (the database down) is said and retried at
        the next run, the reminders not yet asked for being still due."""
        while True:
            try:
                sent = await self.remind()
            except SQLAlchemyError as error:
                log.warning("reminders_failed", error=type(error).__name__)
            else:
                if sent:
                    log.info("reminders_asked", count=sent)
            await asyncio.sleep(interval_s)

    # --- the router's invitees and erasures ---------------------------------------------------

    async def invite(
        self, reference: str, correlation_id: str, contact: InvitationContactV1
    ) -> bool:
        """Invite (`inviting.invite`) and publish the invitation; raises if Kafka does not
        acknowledge it."""
        try:
            outcome = await self._apply(
                partial(inviting.invite, reference=reference, correlation_id=correlation_id,
                        contact=contact)
            )  # fmt: skip
        except IntegrityError:
            return False  # invited concurrently by another instance: once is enough
        # Whatever this reading decided: an invitation stored by an earlier reading of the same
        # invitee, whose publication failed, goes out before the offset moves on.
        await self.publisher.flush([reference])
        return outcome.value

    async def invite_all(self, invitees: Sequence[inviting.Invitee]) -> list[bool]:
        """A batch of invitees (`inviting.invite_all`): one transaction, then one publication
        of the invitations of all their references (those an earlier reading stored and could
        not publish included); raises if either fails, and the whole batch is read again (each
        invitee finds its invitation stored, as alone)."""
        outcome = await self._apply(partial(inviting.invite_all, invitees=invitees))
        await self.publisher.flush([invitee.reference for invitee in invitees])
        return outcome.value

    async def erase(self, reference: str) -> int:
        """`privacy.erase`: how many invitations of `reference` were deleted."""
        return await self.store.database.run(
            partial(privacy.erase, reference=reference, now=self.clock())
        )

    # --- running a use case -------------------------------------------------------------------

    async def _apply(self, use_case: UseCase[Repository, T]) -> Outcome[T]:
        def bound(repository: Repository) -> Outcome[T]:
            return use_case(repository, announce=self.announce, clock=self.clock)

        return await self.store.apply(bound, self.clock())
