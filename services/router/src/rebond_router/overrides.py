"""Live directory overrides: the coordinators' pause, weekly capacity and answer deadline, laid
over `directory.yaml` (issue 21).

`directory.overrides` is compacted and keyed by association, written by the console only: each
record holds every live value of one association (None: the file's value), so the latest per
association is the whole truth and the topic, read from its beginning, rebuilds it. The router
reads it without a consumer group (each instance reads it all, from the start, at every start),
so every instance routes by the same values; `Overrides` keeps the latest per association and
hands the router a new `Directory` at once, then says so on `directory.applied`.

No questionnaire is decided on the file's values alone after a start: `caught_up` (awaited by the
questionnaires' handler) returns only once every override written before it was first called
has been read, so a paused association stays paused across a restart.

`lay_over` is pure and table-tested; the values it makes pass the directory's own checks (an
override cannot make an association the file would refuse).
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from uuid import uuid5

import structlog
from pydantic import ValidationError

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import DirectoryAppliedV1, DirectoryOverrideV1
from rebond_router.directory import Association, Directory
from rebond_router.referral import Rejected
from rebond_sql.types import Clock

log = structlog.get_logger(__name__)


def effective(entry: Association, override: DirectoryOverrideV1 | None) -> Association:
    """`entry` with `override`'s values. A shorter deadline keeps the reminder at the same
    share of it (2 days before a 10-day deadline: 1 day before a 5-day one), so that the
    reminder still comes before the deadline."""
    if override is None:
        return entry
    changes: dict[str, object] = {"override_id": override.override_id}
    if override.paused is not None:
        changes["paused"] = override.paused
    if override.weekly_capacity is not None:
        changes["weekly_capacity"] = override.weekly_capacity
    if override.response_deadline_days is not None:
        days = override.response_deadline_days
        changes["response_deadline_days"] = days
        changes["reminder_days_before_deadline"] = (
            entry.reminder_days_before_deadline * days / entry.response_deadline_days
        )
    try:
        return Association.model_validate({**entry.model_dump(), **changes})
    except ValidationError as error:
        raise Rejected(f"override of {entry.id.value} refused: {error}") from error


def lay_over(base: Directory, latest: Mapping[AssociationId, DirectoryOverrideV1]) -> Directory:
    """`base` (the file) with the latest override of each association laid over it."""
    return base.model_copy(
        update={"associations": [effective(a, latest.get(a.id)) for a in base.associations]}
    )


class HasDirectory(Protocol):
    """What `Overrides` updates: the router (`rebond_router.lifecycle.Router`)."""

    directory: Directory


#: Each partition of `directory.overrides`: its first offset still kept and its end (the next
#: offset to be written), as the broker tells them now.
Bounds = Callable[[], Awaitable[Mapping[int, tuple[int, int]]]]

#: Publishes a `DirectoryAppliedV1` (with its event id) and returns once Kafka acknowledged it.
PublishApplied = Callable[[DirectoryAppliedV1, str], Awaitable[None]]


@dataclass
class Overrides:
    """The values in force: `base` and the latest override read per association. `on_override`
    sets `target.directory` (the router's) before it returns, so the next decision uses them."""

    base: Directory
    target: HasDirectory
    publish: PublishApplied
    clock: Clock
    #: Where the topic ends at this start; None: nothing to wait for (tests of one handler).
    bounds: Bounds | None = None
    latest: dict[AssociationId, DirectoryOverrideV1] = field(default_factory=dict)
    _ends: dict[int, int] | None = None
    _read: dict[int, int] = field(default_factory=dict)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ready(self) -> bool:
        """Whether `caught_up` would return at once: a batch then waits for no task of it."""
        return self.bounds is None or self._ready.is_set()

    async def caught_up(self) -> None:
        """Return once the overrides written before the first call are read (at once without
        `bounds`). A failure to learn the topic's end propagates (the caller's record is read
        again)."""
        if self.bounds is None:
            return
        if self._ends is None:
            bounds = await self.bounds()
            self._ends = {p: end for p, (begin, end) in bounds.items() if end > begin}
            self._check()
        await self._ready.wait()

    def read(self, partition: int, offset: int) -> None:
        """The record at `offset` of `partition` is handled (applied or dead-lettered)."""
        self._read[partition] = max(self._read.get(partition, 0), offset + 1)
        self._check()

    def _check(self) -> None:
        ends = self._ends
        if ends is not None and all(self._read.get(p, 0) >= end for p, end in ends.items()):
            self._ready.set()

    async def on_override(self, override: DirectoryOverrideV1) -> DirectoryAppliedV1:
        """Apply `override` and publish what is now in force. An association not in the file is
        `Rejected`. The event id is the override's and the rule set's: each instance, and each
        start that reads the topic again, says the same thing once for readers."""
        try:
            entry = self.base.get(override.association_id)
        except KeyError:
            raise Rejected(f"{override.association_id.value} is not in the directory") from None
        now_in_force = effective(entry, override)
        self.latest[override.association_id] = override
        self.target.directory = lay_over(self.base, self.latest)
        applied = DirectoryAppliedV1(
            override_id=override.override_id,
            association_id=override.association_id,
            paused=now_in_force.paused,
            weekly_capacity=now_in_force.weekly_capacity,
            response_deadline_days=now_in_force.response_deadline_days,
            rule_set_version=self.base.version,
            applied_at=self.clock(),
        )
        log.info(
            "override_applied",
            association=override.association_id,
            paused=applied.paused,
            weekly_capacity=applied.weekly_capacity,
            response_deadline_days=applied.response_deadline_days,
        )
        await self.publish(applied, str(uuid5(override.override_id, self.base.version)))
        return applied
