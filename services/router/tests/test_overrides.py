"""Live directory overrides laid over directory.yaml (issue 21): pure, then applied to a router."""

import asyncio
from typing import Any
from uuid import uuid4

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import DirectoryAppliedV1, DirectoryOverrideV1
from rebond_router.directory import Directory
from rebond_router.overrides import Overrides, lay_over
from rebond_router.referral import Rejected
from rebond_router.rules import decide

from .conftest import NOW, SIXTY, SOUFFLE, submitted


def override(association: AssociationId = SIXTY, **values: Any) -> DirectoryOverrideV1:
    return DirectoryOverrideV1(
        override_id=uuid4(), association_id=association, set_by="staff-7", set_at=NOW, **values
    )


@pytest.mark.parametrize(
    ("values", "paused", "capacity", "deadline", "reminder"),
    [
        ({}, False, 12, 10, 2),  # nothing set: the file's values
        ({"paused": True}, True, 12, 10, 2),
        ({"weekly_capacity": 30}, False, 30, 10, 2),
        ({"weekly_capacity": 0}, False, 0, 10, 2),
        # The reminder keeps its share of the deadline, so it still comes first.
        ({"response_deadline_days": 5}, False, 12, 5, 1),
        ({"response_deadline_days": 1}, False, 12, 1, 0.2),
        ({"paused": True, "weekly_capacity": 3, "response_deadline_days": 20}, True, 3, 20, 4),
    ],
)
def test_an_override_lays_its_values_over_the_file(
    directory: Directory,
    values: dict[str, Any],
    paused: bool,
    capacity: int,
    deadline: float,
    reminder: float,
) -> None:
    """Set values replace the file's for that association only; None keeps the file's."""
    effective = lay_over(directory, {SIXTY: override(**values)})
    sixty = effective.get(SIXTY)
    assert (sixty.paused, sixty.weekly_capacity) == (paused, capacity)
    assert sixty.response_deadline_days == deadline
    assert sixty.reminder_days_before_deadline == pytest.approx(reminder)
    assert effective.get(SOUFFLE) == directory.get(SOUFFLE)
    assert effective.version == directory.version


class Target:
    def __init__(self, directory: Directory) -> None:
        self.directory = directory


class Published:
    def __init__(self) -> None:
        self.sent: list[tuple[DirectoryAppliedV1, str]] = []

    async def __call__(self, applied: DirectoryAppliedV1, event_id: str) -> None:
        self.sent.append((applied, event_id))


def overrides_on(directory: Directory) -> tuple[Overrides, Target, Published]:
    target, published = Target(directory), Published()
    return Overrides(directory, target, published, lambda: NOW), target, published


async def test_the_latest_override_is_in_force_at_once_and_said(directory: Directory) -> None:
    """Each override replaces the association's previous one, the router's directory changes
    before the call returns (the next decision skips a paused association), and the values in
    force are published with an id derived from the override and the rule set."""
    live, target, published = overrides_on(directory)
    assert decide("e-1", submitted(), NOW, target.directory, {}).decision.primary is SIXTY
    pause = override(paused=True, weekly_capacity=30)
    await live.on_override(pause)
    assert decide("e-2", submitted(), NOW, target.directory, {}).decision.primary is SOUFFLE
    [(applied, event_id)] = published.sent
    assert (applied.override_id, applied.paused, applied.weekly_capacity) == (
        pause.override_id,
        True,
        30,
    )
    assert applied.response_deadline_days == 10 and applied.rule_set_version == directory.version
    other_instance, _, told_again = overrides_on(directory)
    await other_instance.on_override(pause)
    assert told_again.sent[0][1] == event_id  # another instance, or a restart, says the same
    resume = override(paused=False)
    await live.on_override(resume)
    assert target.directory.get(SIXTY).weekly_capacity == 12  # not kept from the older override
    assert decide("e-3", submitted(), NOW, target.directory, {}).decision.primary is SIXTY


async def test_each_decision_records_the_values_it_was_made_by(directory: Directory) -> None:
    """The scores say, per candidate, the weekly capacity, this week's offers and the answer
    deadline in force, and the override they come from (None: the file's values)."""
    live, target, _ = overrides_on(directory)
    raised = override(weekly_capacity=30, response_deadline_days=5)
    await live.on_override(raised)
    routing = decide("e-1", submitted(), NOW, target.directory, {SIXTY: 4})
    scores = {s.association_id: s for s in routing.decision.scores}
    sixty, souffle = scores[SIXTY], scores[SOUFFLE]
    assert (sixty.weekly_capacity, sixty.offered_this_week) == (30, 4)
    assert (sixty.response_deadline_days, sixty.override_id) == (5, raised.override_id)
    file_souffle = directory.get(SOUFFLE)
    assert (souffle.weekly_capacity, souffle.offered_this_week) == (file_souffle.weekly_capacity, 0)
    assert souffle.override_id is None


async def test_an_override_the_directory_would_refuse_changes_nothing(directory: Directory) -> None:
    """An association missing from the file is refused by name; nothing changes or is said."""
    trimmed = directory.model_copy(
        update={"associations": [a for a in directory.associations if a.id is not SIXTY]}
    )
    live, target, published = overrides_on(trimmed)
    with pytest.raises(Rejected, match="60000-rebonds is not in the directory"):
        await live.on_override(override(paused=True))
    assert target.directory is trimmed and published.sent == []


def bounded(directory: Directory, ends: dict[int, tuple[int, int]]) -> Overrides:
    async def bounds() -> dict[int, tuple[int, int]]:
        return ends

    return Overrides(directory, Target(directory), Published(), lambda: NOW, bounds)


async def test_questionnaires_wait_until_the_overrides_written_before_the_start_are_read(
    directory: Directory,
) -> None:
    """`caught_up` returns only once every partition is read up to where it ended at the first
    call; a topic with nothing kept (empty, or all of it past retention) is caught up at once."""
    live = bounded(directory, {0: (0, 3), 1: (5, 5)})
    waiting = asyncio.create_task(live.caught_up())
    for offset in (0, 1):
        live.read(0, offset)
        await asyncio.sleep(0)  # let the waiter run: it must still be waiting
        assert not waiting.done()
    live.read(0, 2)
    await asyncio.wait_for(waiting, 5)
    await asyncio.wait_for(bounded(directory, {0: (7, 7)}).caught_up(), 5)
    await asyncio.wait_for(overrides_on(directory)[0].caught_up(), 5)  # no bounds: nothing to wait
