"""The policy preview (issue 21): what a candidate `directory.yaml` would change, before anyone
applies it.

The console sends the candidate to `POST /internal/preview` (`rebond_contracts.preview`). The
router replays the first decisions of the last `weeks` weeks twice, with the rules in force and
with the candidate, and counts who would go where: the before/after orientation matrix.

Why the numbers can be trusted:

- **The router's own scoring.** A replay ranks with `scoring.rank` and keeps the track's
  candidates with `rules.of_track`, the very functions that decided; it reads only what they
  read of a person (`scoring.Features`: stage, region, needs, company size, distress answer),
  which each referral keeps from its first decision on (`store.Replayable`).
- **Like against like.** Both sides are replayed here, in the order the decisions were made,
  each with its own weekly loads (an offer taken by a consenting person counts against the
  association's capacity of that week, as the router counts it), so the difference is the
  rules' alone: not the loads of the day, nor re-orientations after declines, nor a
  coordinator's manual assignments, which no rule change would replay.
- **Live overrides stay.** The router lays the coordinators' latest overrides (pause,
  capacity, deadline) over whatever `directory.yaml` it runs, so they are laid over the
  candidate too, as they would be once it is deployed.
- **Nothing personal leaves.** The answer is counts per (before, after) pair, never a
  reference, and the candidate is validated exactly as at start-up (`parse_directory`): an
  invalid one is refused naming the association and the field.
"""

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import DirectoryOverrideV1
from rebond_contracts.preview import Move, PreviewResult
from rebond_router.directory import Directory, parse_directory
from rebond_router.overrides import lay_over
from rebond_router.referral import week_start
from rebond_router.rules import of_track
from rebond_router.scoring import rank
from rebond_router.store import Replayable, Store
from rebond_sql.types import Clock


def orient(decisions: Sequence[Replayable], directory: Directory) -> list[AssociationId | None]:
    """Where each decision (oldest first) would go with `directory`: its track's first
    candidate, or None (nobody: the human queue for a person who shared a contact). A
    consenting person's offer counts against that association's capacity of its week."""
    loads: dict[datetime, dict[AssociationId, int]] = {}
    chosen: list[AssociationId | None] = []
    for decision in decisions:
        week = loads.setdefault(week_start(decision.decided_at), {})
        candidates = of_track(rank(decision.features, directory, week), decision.track)
        primary = candidates[0].association if candidates else None
        if primary is not None and decision.shared:
            week[primary] = week.get(primary, 0) + 1
        chosen.append(primary)
    return chosen


def replay(
    decisions: Sequence[Replayable], before: Directory, after: Directory, weeks: int
) -> PreviewResult:
    """The matrix of `decisions` replayed with `before` and with `after`: one `Move` per
    (before, after) pair that holds anyone, the largest first."""
    pairs = Counter(zip(orient(decisions, before), orient(decisions, after), strict=True))
    moves = [
        Move(before=b.value if b else None, after=a.value if a else None, count=count)
        for (b, a), count in sorted(
            pairs.items(), key=lambda item: (-item[1], str(item[0][0]), str(item[0][1]))
        )
    ]
    return PreviewResult(
        before_version=before.version, after_version=after.version, weeks=weeks, moves=moves
    )


@dataclass
class Previewer:
    """The preview on the router's store and its rules in force (`current()`: the directory
    the router decides with now, overrides laid over; `overrides()`: the latest override of
    each association)."""

    store: Store
    current: Callable[[], Directory]
    overrides: Callable[[], Mapping[AssociationId, DirectoryOverrideV1]]
    clock: Clock
    weeks: int

    async def __call__(self, candidate_yaml: str) -> PreviewResult:
        """The matrix for `candidate_yaml`; `DirectoryError` (naming the association and the
        field) when it is not a directory the router would start with, or when a live override
        cannot be laid over it (`Rejected`)."""
        candidate = lay_over(parse_directory(candidate_yaml, "candidate"), self.overrides())
        decisions = await self.store.replayable(self.clock() - timedelta(weeks=self.weeks))
        return replay(decisions, self.current(), candidate, self.weeks)
